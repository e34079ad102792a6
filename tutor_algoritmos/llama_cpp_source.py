"""Get llama.cpp's converter at the pinned commit: an existing tree, a git clone, or the sdist.

llama-cpp-python 0.3.36 vendors llama.cpp at exactly the commit we pin, so when GitHub is out of
reach (CI, air-gapped machines) the same tree comes from PyPI. Either source is verified before any
of its scripts run: the commit id of a clone, the sha256 of the sdist. A tree is only moved into
place once complete, so an interrupted fetch is never mistaken for a finished one.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import publish, sha256_of, temporary_sibling

logger = logging.getLogger("tutor")

REPO_URL = "https://github.com/ggml-org/llama.cpp"
PINNED_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
SDIST_VERSION = "0.3.36"  # llama-cpp-python release that vendors PINNED_COMMIT (its CHANGELOG)
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CONVERTER = "convert_hf_to_gguf.py"
# The sdist is kept here once downloaded (~70 MB): a re-fetch of the tree needs no network
DOWNLOADS = Path("build/downloads")


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def clone(dest: Path) -> None:
    tmp = temporary_sibling(dest)
    _run(["git", "clone", "--quiet", "--filter=blob:none", "--no-checkout", REPO_URL, str(tmp)], timeout=600)
    _run(["git", "-C", str(tmp), "checkout", "--quiet", PINNED_COMMIT], timeout=600)
    head = _run(["git", "-C", str(tmp), "rev-parse", "HEAD"]).stdout.strip()
    if head != PINNED_COMMIT:
        raise UserError(f"llama.cpp clone is at {head}, expected {PINNED_COMMIT}")
    publish(tmp, dest)


def download_sdist(downloads: Path = DOWNLOADS) -> Path:
    """The pinned sdist from PyPI into `downloads` (kept), or the copy already there."""
    kept = downloads / f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
    if kept.is_file():
        return kept
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads) as download:
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
              f"llama-cpp-python=={SDIST_VERSION}", "-d", download], timeout=900)
        next(Path(download).glob("llama_cpp_python-*.tar.gz")).replace(kept)
    return kept


def from_sdist(dest: Path, sdist: Path | None = None) -> None:
    sdist = sdist or download_sdist()
    actual = sha256_of(sdist)
    if actual != SDIST_SHA256:
        raise UserError(f"{sdist} has sha256 {actual}, expected {SDIST_SHA256} — "
                        "the download is corrupt or not the pinned release; delete it and retry")
    prefix = f"llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp/"
    tmp = temporary_sibling(dest)
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            if member.name.startswith(prefix) and member.name != prefix:
                member.name = member.name[len(prefix):]
                members.append(member)
        tar.extractall(tmp, members=members, filter="data")
    if not (tmp / CONVERTER).is_file():
        raise UserError(f"{sdist.name} holds no vendor/llama.cpp/{CONVERTER}")
    publish(tmp, dest)


def ensure_llama_cpp(dest: Path, sdist: Path | None = None) -> Path:
    """The llama.cpp tree at `dest`, fetched if missing. Returns the converter script."""
    if (dest / CONVERTER).is_file():
        return dest / CONVERTER
    if dest.exists() and any(dest.iterdir()):
        raise UserError(f"{dest} exists but has no {CONVERTER} — remove it or set LLAMA_CPP_DIR")
    if sdist is None:
        try:
            logger.info("cloning llama.cpp at %s", PINNED_COMMIT[:9])
            clone(dest)
            return dest / CONVERTER
        except (subprocess.SubprocessError, OSError) as err:
            detail = getattr(err, "stderr", "") or err
            logger.info("git clone failed (%s); using the same tree from llama-cpp-python==%s on PyPI",
                        str(detail).strip().splitlines()[-1] if str(detail).strip() else type(err).__name__,
                        SDIST_VERSION)
    try:
        from_sdist(dest, sdist)
    except subprocess.SubprocessError as err:
        raise UserError(f"could not download llama-cpp-python=={SDIST_VERSION} from PyPI ({err}) — "
                        "check the network, or clone llama.cpp yourself into "
                        f"{dest} at commit {PINNED_COMMIT}") from None
    return dest / CONVERTER


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Fetch llama.cpp at the pinned commit.")
    parser.add_argument("dest", type=Path, help="where the llama.cpp tree goes")
    parser.add_argument("--sdist", type=Path, help="use this llama-cpp-python sdist instead of downloading")
    args = parser.parse_args()
    print(ensure_llama_cpp(args.dest, args.sdist))


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
