"""Shared fixtures: the tiny Phi-3.5 model and the Phi-3.5 config, built in-process, offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LLAMA_CPP_DIR = Path(os.environ.get("LLAMA_CPP_DIR", ROOT / "llama.cpp"))
TINY_MODEL = ROOT / "build" / "tiny-phi3"

# microsoft/Phi-3.5-mini-instruct's config.json, the fields that define its shapes.
PHI35_MINI_CONFIG = dict(
    vocab_size=32064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=131072,
    original_max_position_embeddings=4096, sliding_window=262144, tie_word_embeddings=False,
    rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                     "short_factor": [1.0] * 48, "long_factor": [1.0] * 48},
)


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
    from transformers import Phi3Config

    return Phi3Config(**PHI35_MINI_CONFIG)
