"""Shared fixtures: the tiny Phi-3.5 model and the Phi-3.5 config, built in-process, offline.

The tests are hermetic: before anything imports huggingface_hub, HF_HOME points at an empty
folder of this session and HF_HUB_OFFLINE=1, for this process and every command it starts. A
user's own cache (which holds Phi-3.5 after `make all`) never changes what a test sees.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_HF_HOME = tempfile.mkdtemp(prefix="tutor-tests-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ.update(HF_HOME=_HF_HOME, HF_HUB_OFFLINE="1")
os.environ.pop("HF_HUB_CACHE", None)
os.environ.pop("TRANSFORMERS_CACHE", None)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LLAMA_CPP_DIR = Path(os.environ.get("LLAMA_CPP_DIR", ROOT / "llama.cpp"))
TINY_MODEL = ROOT / "build" / "tiny-phi3"


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """build/tiny-phi3 (made by `make tiny-model`; built here if missing)."""
    if not (TINY_MODEL / "config.json").is_file():
        from tutor_algoritmos.llama_cpp_source import ensure_llama_cpp
        from tutor_algoritmos.tiny_phi3 import build

        ensure_llama_cpp(LLAMA_CPP_DIR)
        build(LLAMA_CPP_DIR / "models" / "ggml-vocab-phi-3.gguf", TINY_MODEL)
    return TINY_MODEL


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def phi35_config():
    from tutor_algoritmos.tiny_phi3 import phi35_mini_config

    return phi35_mini_config()
