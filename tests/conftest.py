"""Shared fixtures: the tiny Phi-3.5 model, the Phi-3.5 config, Ollama's Go renderer and the
conversations several test files render or train on, built in-process, offline.

The tests are hermetic: before anything imports huggingface_hub, HF_HOME points at an empty
folder of this session and HF_HUB_OFFLINE=1, for this process and every command it starts. A
user's own cache (which holds Phi-3.5 after `make all`) never changes what a test sees.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
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
from tutor_algoritmos.dataset import Record  # noqa: E402  (the repository root is importable from here on)
from tutor_algoritmos.modelfile_syntax import parse_modelfile  # noqa: E402

LLAMA_CPP_DIR = Path(os.environ.get("LLAMA_CPP_DIR", ROOT / "llama.cpp"))
TINY_MODEL = ROOT / "build" / "tiny-phi3"


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """build/tiny-phi3 (made by `make tiny-model`; built here if missing)."""
    if not (TINY_MODEL / "config.json").is_file():
        from tutor_algoritmos.fixtures.tiny_phi3 import build
        from tutor_algoritmos.llama_cpp_source import ensure_llama_cpp

        ensure_llama_cpp(LLAMA_CPP_DIR)
        build(LLAMA_CPP_DIR / "models" / "ggml-vocab-phi-3.gguf", TINY_MODEL)
    return TINY_MODEL


@pytest.fixture(scope="session")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def phi35_config():
    from tutor_algoritmos.phi35 import phi35_mini_config

    return phi35_mini_config()


def modelfile_value(text: str, command: str) -> str:
    return dict(parse_modelfile(text))[command.lower()]


@pytest.fixture(scope="module")
def go_renderer(tmp_path_factory):
    if shutil.which("go") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Go is required in CI for the template identity test: apt-get install golang-go")
        pytest.skip("Go not installed: apt-get install golang-go (or https://go.dev/dl) to run this test")
    binary = tmp_path_factory.mktemp("go") / "ollama_render"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOCACHE": str(binary.parent / "cache"), "GO111MODULE": "on"}
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=ROOT / "tests" / "ollama_render", check=True, env=env)
    return binary


def ollama_render(binary, template: str, messages: list[dict]) -> str:
    request = json.dumps({"template": template, "messages": messages})
    return subprocess.run([str(binary)], input=request, capture_output=True, text=True, check=True).stdout


def served_prompt_ids(binary, fmt, vocab_gguf, system: str) -> list[int]:
    """What llama.cpp serves for a system prompt and one question: the TEMPLATE rendered as Ollama
    renders it (Go), then tokenized with the GGUF's own vocabulary, special tokens parsed."""
    from tutor_algoritmos.gguf_tools import load_llama

    prompt = ollama_render(binary, fmt.template, [{"role": "system", "content": system},
                                                  {"role": "user", "content": "¿Qué es BFS?"}])
    llm = load_llama(vocab_gguf, vocab_only=True)
    try:
        return llm.tokenize(prompt.encode(), add_bos=False, special=True)
    finally:
        llm.close()


CONVERSATIONS = {
    "single turn": [{"role": "user", "content": "¿Qué es la búsqueda binaria?"}],
    "multi turn": [
        {"role": "user", "content": "¿Por qué mi BFS no encuentra el camino más corto con pesos?"},
        {"role": "assistant", "content": "Porque BFS cuenta aristas, no pesos.\n```python\nassert True\n```"},
        {"role": "user", "content": "¿Y Dijkstra? Dame un ejemplo con \"comillas\" y \\barras\\."},
    ],
    # a 4-turn dialogue: three finished exchanges rendered once each, then the pending question
    "dialogue": [
        {"role": "user", "content": "no me des la solución: ¿cómo detecto un ciclo en un grafo dirigido?"},
        {"role": "assistant", "content": "Pista 1: piensa en los colores blanco, gris y negro. ¿Qué significa gris?"},
        {"role": "user", "content": "que lo estoy visitando?"},
        {"role": "assistant", "content": "¡Eso es! Y si desde un nodo gris llegas a otro gris, ¿qué encontraste?"},
        {"role": "user", "content": "un ciclo\n```python\ndef f(g):\n    return {}\n```"},
        {"role": "assistant", "content": "Exacto.\n\n"},
        {"role": "user", "content": "gracias!! ¿y en uno no dirigido?"},
    ],
}


# Three student turns, three tutor turns: every answer and its <|end|> must be learned.
DIALOGUE = Record(3, "Dijkstra", (
    {"role": "user", "content": "no entiendo dijkstra"},
    {"role": "assistant", "content": "Dijkstra fija primero el nodo más cercano. ¿Qué nodo sale primero?"},
    {"role": "user", "content": "el de menor distancia?"},
    {"role": "assistant", "content": "¡Exacto! Y esa distancia ya no baja si los pesos no son negativos."},
    {"role": "user", "content": "y con pesos negativos?"},
    {"role": "assistant", "content": "Entonces usa Bellman-Ford."},
), "dialogue")


def labelled_runs(labels: list[int]) -> list[tuple[int, int]]:
    """[start, end) of every stretch of labelled (not -100) positions."""
    runs, start = [], None
    for i, label in enumerate([*labels, -100]):
        if label != -100 and start is None:
            start = i
        elif label == -100 and start is not None:
            runs.append((start, i))
            start = None
    return runs


def llama_logits(gguf, text, flash_attn=True):
    """Token ids and logits of `text` as llama.cpp serves the GGUF (BOS added, special tokens parsed)."""
    import numpy

    from tutor_algoritmos.gguf_tools import load_llama

    llm = load_llama(gguf, n_ctx=512, logits_all=True, n_threads=2, flash_attn=flash_attn)
    try:
        ids = llm.tokenize(text.encode(), add_bos=True, special=True)  # as llama.cpp serves it
        llm.eval(ids)
        return ids, numpy.array(llm.scores[: len(ids)])
    finally:
        llm.close()
