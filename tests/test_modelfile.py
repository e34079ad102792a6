"""The Modelfile: canonical file in sync, exact stops and parameters, and Ollama's rendering of its
TEMPLATE (Go text/template, driven turn by turn as Ollama does) equal to the HF chat template."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

from tutor_algoritmos.chat_formats import PHI3
from tutor_algoritmos.modelfile import render_modelfile
from tutor_algoritmos.prompts import SYSTEM_PROMPT

MODELFILE = (ROOT / "Modelfile").read_text(encoding="utf-8")


def modelfile_value(text: str, command: str) -> str:
    return re.search(rf'^{command} """(.*?)"""$', text, re.S | re.M).group(1)


def test_top_level_modelfile_is_generated_from_the_same_source():
    assert MODELFILE == render_modelfile("./tutor_algoritmos.gguf", PHI3)


def test_stops_and_parameters():
    assert re.findall(r'^PARAMETER stop "(.*)"$', MODELFILE, re.M) == \
        ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>"]
    assert re.findall(r"^PARAMETER (temperature|num_ctx) (\S+)$", MODELFILE, re.M) == \
        [("temperature", "0.7"), ("num_ctx", "4096")]
    lines = MODELFILE.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("PARAMETER") and "stop" not in line:
            assert lines[i - 1].startswith("# "), f"no comment above {line}"
    assert modelfile_value(MODELFILE, "SYSTEM") == SYSTEM_PROMPT
    assert MODELFILE.splitlines()[2] == "FROM ./tutor_algoritmos.gguf"


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


CONVERSATIONS = {
    "single turn": [{"role": "user", "content": "¿Qué es la búsqueda binaria?"}],
    "multi turn": [
        {"role": "user", "content": "[BFS] - ¿Por qué mi BFS no encuentra el camino más corto con pesos?"},
        {"role": "assistant", "content": "Porque BFS cuenta aristas, no pesos.\n```python\nassert True\n```"},
        {"role": "user", "content": "¿Y Dijkstra? Dame un ejemplo con \"comillas\" y \\barras\\."},
    ],
}


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_ollama_rendering_equals_hf_chat_template(go_renderer, tokenizer, name):
    system = modelfile_value(MODELFILE, "SYSTEM")
    # Ollama puts the Modelfile's SYSTEM first when the request has no system message.
    messages = [{"role": "system", "content": system}, *CONVERSATIONS[name]]
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ollama_render(go_renderer, modelfile_value(MODELFILE, "TEMPLATE"), messages) == expected


def test_renderer_cuts_after_response(go_renderer):
    # the last turn must end where the model starts writing, not with a closing <|end|>
    out = ollama_render(go_renderer, PHI3.template, [{"role": "user", "content": "hola"}])
    assert out == "<|user|>\nhola<|end|>\n<|assistant|>\n"


@pytest.mark.parametrize("system", [
    'Di "hola" y usa comillas "dobles"',
    "Rutas C:\\datos\\grafo.txt y \\n literal, ñandú, ¿por qué?, 漢字",
    "Varias\nlíneas\n\tcon tabulador\n",
])
def test_system_prompts_with_quotes_backslashes_and_non_ascii_survive(system):
    assert modelfile_value(render_modelfile("./x.gguf", PHI3, system), "SYSTEM") == system


def test_a_system_prompt_that_cannot_be_written_is_refused():
    from tutor_algoritmos.errors import UserError

    with pytest.raises(UserError, match='contains """'):
        render_modelfile("./x.gguf", PHI3, 'Usa """docstrings""" en Python')
    with pytest.raises(UserError, match="control characters"):
        render_modelfile("./x.gguf", PHI3, "campana \x07")


def test_free_space_is_checked_before_writing(tmp_path):
    from tutor_algoritmos.errors import UserError
    from tutor_algoritmos.files import ensure_free_space

    with pytest.raises(UserError, match=r"needs about .* GiB in .* but only .* GiB is free"):
        ensure_free_space(tmp_path, 10**18, "the f16 GGUF")
    ensure_free_space(tmp_path, 1, "a byte")
