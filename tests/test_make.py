"""make's promise on a fresh OUT: no step trusts a check of another file, `make -n` writes
nothing, check-data follows the run's max_length, the Phi-3.5 length check works offline, and
`make clean` keeps the download cache. (The promises about a built pipeline are tested on it, in
test_pipeline_end_to_end.py.)"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LLAMA_CPP_DIR, ROOT

from tutor_algoritmos.check_data import check

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out

GOOD = {"instruction": "[Pilas] - ¿Qué es una pila?",
        "output": "Una pila es LIFO.\n```python\np = [1]\nassert p.pop() == 1\n```\n\nAnalogía: platos apilados."}


def make(out, *args):
    return subprocess.run(["make", *args, f"PYTHON={sys.executable}", f"OUT={out}", "BASE_MODEL=build/tiny-phi3",
                           f"LLAMA_CPP_DIR={LLAMA_CPP_DIR}"], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ)


def write_rows(path, *rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_check_of_one_file_never_stands_in_for_another(tmp_path, tiny_model):
    broken = write_rows(tmp_path / "other.jsonl", {"instruction": "sin tema", "output": "x"})
    good = write_rows(tmp_path / "good.jsonl", GOOD)
    os.utime(broken, (1, 1))  # the broken file is the older one: its mtime alone would not redo the check
    out = tmp_path / "out"
    assert make(out, "check-data", f"DATA={good}").returncode == 0
    result = make(out, "check-data", f"DATA={broken}")
    assert result.returncode != 0 and f"{broken}:1: instruction does not start with '[Tema] - '" in result.stderr
    # and train would check it first instead of trusting the stamp the good file left
    dry = make(out, "-n", "train", f"DATA={broken}").stdout
    assert dry.index(f"check_data {broken}") < dry.index("train_lora.py")


def test_an_older_copy_put_in_the_checked_files_place_is_checked_again(tmp_path, tiny_model):
    data = write_rows(tmp_path / "data.jsonl", GOOD)
    out = tmp_path / "out"
    assert make(out, "check-data", f"DATA={data}").returncode == 0
    write_rows(data, {"instruction": "sin tema", "output": "x"})
    os.utime(data, (1, 1))  # `cp -p` of an older broken file: same name, an older date
    dry = make(out, "-n", "train", f"DATA={data}").stdout
    assert dry.index(f"check_data {data}") < dry.index("train_lora.py")


def step_prerequisites(out) -> dict[str, list[str]]:
    """make's own database: each artifact of OUT and its prerequisites, as make sees them."""
    database = make(out, "-pq").stdout
    return {line.split(":")[0][len(f"{out}/"):]: line.split(":", 1)[1].split("|")[0].split()
            for line in database.splitlines() if line.startswith(f"{out}/") and ":" in line}


def imported_modules(entry: Path) -> set[str]:
    """Every package module an entry point imports, at any depth, inside functions too."""
    seen, todo = set(), [entry]
    while todo:
        for node in ast.walk(ast.parse(todo.pop().read_text(encoding="utf-8"))):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names] \
                if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                path = ROOT / (name.replace(".", "/") + ".py")
                if name.startswith("tutor_algoritmos") and path.is_file() and path not in seen:
                    seen.add(path)
                    todo.append(path)
    return {str(p.relative_to(ROOT)) for p in seen}


def test_every_step_is_redone_when_code_it_runs_changes(tmp_path):
    steps = step_prerequisites(tmp_path / "o")
    pkg = ROOT / "tutor_algoritmos"
    entries = {".data-checked": [pkg / "check_data.py"], "adapter/adapter_model.safetensors": [ROOT / "train_lora.py"],
               "merged/config.json": [pkg / "merge.py"], "tutor_algoritmos.gguf": [pkg / "conversion.py"],
               "tutor_algoritmos-Q4_K_M.gguf": [pkg / "conversion.py"], "base.gguf": [pkg / "conversion.py"],
               "Modelfile": [pkg / "modelfile.py"], "report.md": [pkg / "evaluation.py"]}
    no_effect = {"tutor_algoritmos/errors.py", "tutor_algoritmos/files.py"}  # messages and renames only
    for step, files in entries.items():
        code = set().union(*(imported_modules(f) | {str(f.relative_to(ROOT))} for f in files)) - no_effect
        assert code <= set(steps[step]), (step, sorted(code - set(steps[step])))
    # naming the Ollama model (MODEL_NAME) reconverts nothing
    assert not any("model_name" in p for prerequisites in steps.values() for p in prerequisites)


def test_make_n_writes_nothing(tmp_path, tiny_model):
    out = tmp_path / "out"
    result = make(out, "-n", "train", "TRAIN_ARGS=")
    assert result.returncode == 0, result.stderr
    train = (f"train_lora.py --model_name_or_path build/tiny-phi3 --data algoritmos_fixed.jsonl "
             f"--output_dir {out}/adapter")
    assert train in result.stdout
    assert not out.exists()


def test_check_data_follows_the_runs_max_length(tmp_path, tiny_model):
    # ~2,600 tokens with the Phi-3.5 tokenizer: over the recipe's 2048, within 4096
    long = {**GOOD, "output": GOOD["output"].replace("LIFO.", "LIFO. " + "apilar y desapilar " * 400)}
    data = write_rows(tmp_path / "long.jsonl", long)
    out = tmp_path / "out"
    result = make(out, "check-data", f"DATA={data}")
    assert result.returncode != 0 and "over max_length 2048" in result.stderr
    assert make(out, "check-data", f"DATA={data}", "TRAIN_ARGS=--max_length 4096").returncode == 0


def test_an_overlong_lesson_fails_offline_with_phi35s_own_tokenizer(tmp_path, tiny_model):
    huge = {**GOOD, "output": GOOD["output"] + " relleno" * 14_000}  # 112 KB
    data = write_rows(tmp_path / "huge.jsonl", huge)
    assert len(data.read_bytes()) > 112_000
    hub_id = "microsoft/Phi-3.5-mini-instruct"  # not cached (HF_HOME is empty) and the hub is off
    _, problems = check(data, execute=False, tokenizer=hub_id, llama_cpp_dir=LLAMA_CPP_DIR)
    assert [p.what for p in problems] and "tokens with the system prompt" in problems[0].what
    # without llama.cpp's vocabulary (or for another base), the safe character bound still catches it
    _, problems = check(data, execute=False, tokenizer=hub_id, llama_cpp_dir=None)
    assert "characters, certainly over max_length 2048 tokens" in problems[0].what
    _, problems = check(write_rows(tmp_path / "ok.jsonl", GOOD), execute=False, tokenizer=hub_id)
    assert problems == []


def test_clean_keeps_the_download_cache(tmp_path):
    build = tmp_path / "build"
    (build / "downloads").mkdir(parents=True)
    (build / "downloads" / "llama_cpp_python-0.3.36.tar.gz").write_bytes(b"sdist")
    (build / "tiny-phi3").mkdir()
    (tmp_path / "out").mkdir()
    result = subprocess.run(["make", "clean", f"OUT={tmp_path / 'out'}", f"BUILD={build}"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in build.iterdir()) == ["downloads"] and not (tmp_path / "out").exists()
