"""Outputs appear whole or not at all, and only when the disk can hold them."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tutor_algoritmos.errors import UserError

GIB = 1024**3


def temporary_sibling(final: Path) -> Path:
    """`out/merged` -> `out/merged.tmp`: same filesystem, so the final rename is atomic."""
    tmp = final.with_name(final.name + ".tmp")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    elif tmp.exists():
        tmp.unlink()
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return tmp


def publish(tmp: Path, final: Path) -> None:
    """Swap a finished temporary file or folder into place."""
    if final.is_dir():
        shutil.rmtree(final)
    tmp.replace(final)


def publish_text(final: Path, text: str) -> None:
    """Write a text file under a temporary name and swap it in: a reader never sees half of it."""
    tmp = temporary_sibling(final)
    tmp.write_text(text, encoding="utf-8")
    publish(tmp, final)


def ensure_free_space(folder: Path, needed_bytes: int, what: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    needed = int(needed_bytes * 1.1)  # 10% headroom for metadata and temporary copies
    if free < needed:
        raise UserError(f"{what} needs about {needed / GIB:.1f} GiB in {folder} but only "
                        f"{free / GIB:.1f} GiB is free — free some space or set OUT to another disk")


def folder_size(folder: Path, pattern: str = "*.safetensors") -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
