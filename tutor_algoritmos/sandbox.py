"""Run a dataset's Python example as untrusted code.

Each block gets its own interpreter (`python -I -B`: no user site, no PYTHON* variables, no .pyc),
an empty environment, a throwaway working directory and hard limits (CPU seconds, address space,
file size, wall clock). An audit hook inside the child refuses writes, deletions, subprocesses and
network: a lesson's code has no business doing any of them, and the validator reports it.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

CPU_SECONDS = 10  # the shipped examples each run in well under 1 s
WALL_SECONDS = 20  # wall clock: covers sleeping code, which uses no CPU time
MEMORY_BYTES = 1024 * 1024 * 1024  # 1 GiB address space: a CPython process needs ~30 MB
FILE_BYTES = 1024 * 1024  # largest file the child may write, should the audit hook miss one

# Runs inside the child before the example. Audit events: docs.python.org/3/library/audit_events.html
GUARD = r'''
import sys
_FORBIDDEN = {"os.remove", "os.unlink", "os.rename", "os.replace", "os.rmdir", "os.mkdir",
              "os.chmod", "os.chown", "os.link", "os.symlink", "os.truncate", "shutil.rmtree",
              "shutil.copyfile", "shutil.move", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
              "os.fork", "os.forkpty", "subprocess.Popen", "socket.connect", "socket.bind",
              "ctypes.dlopen"}
def _guard(event, args):
    if event == "open" and len(args) > 1 and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
        raise PermissionError(f"el ejemplo intenta escribir el archivo {args[0]!r}")
    if event == "open" and len(args) > 2 and isinstance(args[2], int) and args[2] & 0o3:
        raise PermissionError(f"el ejemplo intenta escribir el archivo {args[0]!r}")
    if event in _FORBIDDEN:
        raise PermissionError(f"el ejemplo intenta {event}")
sys.addaudithook(_guard)
_code = sys.stdin.read()
del sys.modules["__main__"].__dict__["_guard"]
exec(compile(_code, "<ejemplo>", "exec"), {"__name__": "__main__"})
'''


@dataclass(frozen=True)
class RunResult:
    ok: bool
    problem: str = ""  # one line: what went wrong


def _limits(cpu_seconds: int):
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))  # SIGXCPU, then SIGKILL
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def run_python(code: str, cpu_seconds: int = CPU_SECONDS, wall_seconds: int = WALL_SECONDS) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="tutor-ejemplo-") as workdir:
        try:
            proc = subprocess.run([sys.executable, "-I", "-B", "-c", GUARD], input=code, text=True,
                                  capture_output=True, cwd=workdir, env={}, timeout=wall_seconds,
                                  preexec_fn=_limits(cpu_seconds))
        except subprocess.TimeoutExpired:
            return RunResult(False, f"did not finish within {wall_seconds} s (an endless loop?)")
    if proc.returncode == 0:
        return RunResult(True)
    last = _last_line(proc.stderr)
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return RunResult(False, f"used more than {cpu_seconds} s of CPU (an endless loop?)")
    if "MemoryError" in last or proc.returncode == -signal.SIGSEGV:
        return RunResult(False, f"ran out of its {MEMORY_BYTES // 2**20} MiB memory limit")
    if "PermissionError" in last and "el ejemplo intenta" in last:
        return RunResult(False, f"touches files, processes or the network: {last}")
    return RunResult(False, f"raises {last or f'exit status {proc.returncode}'}")
