"""Fetching llama.cpp: a failed or partial clone falls back to the pinned sdist; nothing half-done is kept."""

from __future__ import annotations

import logging
import subprocess

import pytest

from tutor_algoritmos import llama_cpp_source as source
from tutor_algoritmos.errors import UserError


@pytest.fixture(scope="module")
def sdist():
    """The pinned llama-cpp-python sdist (build/downloads/, fetched from PyPI once by `make llama.cpp`)."""
    return source.download_sdist()


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_clone_without_the_pinned_commit_falls_back_to_the_sdist(tmp_path, sdist, monkeypatch, caplog):
    # a reachable repository that lacks the pinned commit: the clone succeeds, the checkout fails,
    # leaving a partial tree in dest.tmp
    repo = tmp_path / "upstream"
    repo.mkdir()
    git("init", "--quiet", cwd=repo)
    (repo / "README.md").write_text("not llama.cpp")
    git("add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x", cwd=repo)
    monkeypatch.setattr(source, "REPO_URL", repo.as_uri())
    monkeypatch.setattr(source, "download_sdist", lambda: sdist)

    dest = tmp_path / "llama.cpp"
    with caplog.at_level(logging.INFO, logger="tutor"):
        converter = source.ensure_llama_cpp(dest)
    assert "git clone failed" in caplog.text and "llama-cpp-python==0.3.36" in caplog.text
    assert converter == dest / "convert_hf_to_gguf.py" and converter.is_file()
    assert (dest / "models" / "ggml-vocab-phi-3.gguf").is_file()
    assert not (dest / "README.md").read_text().startswith("not llama.cpp")  # nothing of the partial clone
    assert not (tmp_path / "llama.cpp.tmp").exists()


def test_interrupted_extraction_is_redone_not_taken(tmp_path, sdist):
    dest = tmp_path / "llama.cpp"
    leftover = tmp_path / "llama.cpp.tmp"  # what a killed extraction leaves behind
    (leftover / "gguf-py").mkdir(parents=True)
    (leftover / "convert_hf_to_gguf.py").write_text("# cut off mid-write")
    source.ensure_llama_cpp(dest, sdist)
    assert (dest / "convert_hf_to_gguf.py").read_text() != "# cut off mid-write"
    assert (dest / "gguf-py" / "gguf" / "gguf_reader.py").is_file()
    assert not leftover.exists()


def test_a_tree_without_the_converter_is_refused(tmp_path):
    dest = tmp_path / "llama.cpp"
    (dest / "src").mkdir(parents=True)
    with pytest.raises(UserError, match="exists but has no convert_hf_to_gguf.py — remove it"):
        source.ensure_llama_cpp(dest)


def test_an_sdist_with_the_wrong_hash_is_refused_before_extraction(tmp_path):
    fake = tmp_path / "llama_cpp_python-0.3.36.tar.gz"
    fake.write_bytes(b"not the release")
    with pytest.raises(UserError, match="sha256 .* expected 832db069"):
        source.ensure_llama_cpp(tmp_path / "llama.cpp", fake)
    assert not (tmp_path / "llama.cpp").exists() and not (tmp_path / "llama.cpp.tmp").exists()
