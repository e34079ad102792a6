"""The Modelfile: canonical file in sync, exact stops and parameters, and Ollama's rendering of its
TEMPLATE (Go text/template, driven turn by turn as Ollama does) equal to the HF chat template."""

from __future__ import annotations

import re

import pytest
from conftest import CONVERSATIONS, LLAMA_CPP_DIR, ROOT, modelfile_value, ollama_render, served_prompt_ids

from tutor_algoritmos.chat_formats import PHI3
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.modelfile import NUM_CTX, REPLY_BUDGET, render_modelfile, system_block_tokens
from tutor_algoritmos.modelfile_syntax import parse_modelfile
from tutor_algoritmos.prompts import SYSTEM_PROMPT

MODELFILE = (ROOT / "Modelfile").read_text(encoding="utf-8")


PHI3_VOCAB = LLAMA_CPP_DIR / "models" / "ggml-vocab-phi-3.gguf"


def test_top_level_modelfile_is_generated_from_the_same_source(tiny_model):
    assert MODELFILE == render_modelfile("./tutor_algoritmos.gguf", PHI3, system_block_tokens(PHI3_VOCAB, PHI3))


def test_num_keep_is_the_system_block_as_llama_cpp_and_the_real_tokenizer_cut_it(go_renderer, tokenizer):
    num_keep = int(re.search(r"^PARAMETER num_keep (\d+)$", MODELFILE, re.M)[1])
    block = tokenizer(PHI3.system_block(SYSTEM_PROMPT), add_special_tokens=False)["input_ids"]
    assert num_keep == len(block) and block[0] == 32006 and block[-1] == 32007  # <|system|> ... <|end|>
    # in the served prompt the block ends on a token boundary: the first num_keep tokens are exactly it
    ids = served_prompt_ids(go_renderer, PHI3, PHI3_VOCAB, SYSTEM_PROMPT)
    assert ids[:num_keep] == block and ids[num_keep] == 32010  # then <|user|>


def test_every_answer_of_the_dataset_fits_the_reply_budget(tokenizer):
    from tutor_algoritmos.dataset import load_records

    longest = max(len(tokenizer(answer, add_special_tokens=False)["input_ids"]) + 1  # + <|end|>
                  for record in load_records(ROOT / "algoritmos_fixed.jsonl") for answer in record.answers)
    assert longest <= REPLY_BUDGET
    assert re.search(r"^PARAMETER num_predict (\d+)$", MODELFILE, re.M)[1] == str(REPLY_BUDGET)
    num_keep = int(re.search(r"^PARAMETER num_keep (\d+)$", MODELFILE, re.M)[1])
    assert NUM_CTX - num_keep - REPLY_BUDGET >= 2000  # room left for the conversation itself


def test_stops_and_parameters():
    assert re.findall(r'^PARAMETER stop "(.*)"$', MODELFILE, re.M) == \
        ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>"]
    assert re.findall(r"^PARAMETER (temperature|num_ctx|num_predict) (\S+)$", MODELFILE, re.M) == \
        [("temperature", "0.7"), ("num_ctx", "4096"), ("num_predict", str(REPLY_BUDGET))]
    lines = MODELFILE.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("PARAMETER") and "stop" not in line:
            assert lines[i - 1].startswith("# "), f"no comment above {line}"
    assert modelfile_value(MODELFILE, "SYSTEM") == SYSTEM_PROMPT
    assert MODELFILE.splitlines()[2] == "FROM ./tutor_algoritmos.gguf"


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


def test_reader_follows_ollamas_parser():
    # behaviours of ollama/ollama parser/parser.go (ParseFile, unquote) that decide what we may write
    text = ('# comment\nFROM ./mi carpeta/m.gguf\nSYSTEM """Usa """docstrings""" aquí"""\n'
            'PARAMETER stop "<|end|>"\nPARAMETER num_ctx 4096\nTEMPLATE """a\x07b\r\n  c  """')
    assert parse_modelfile(text) == [("model", "./mi carpeta/m.gguf"), ("system", 'Usa """docstrings""" aquí'),
                                     ("stop", "<|end|>"), ("num_ctx", "4096"), ("template", "ab\r\n  c  ")]
    # no escapes: a closing quote at a line end ends the value, and the rest is not a command
    with pytest.raises(UserError, match="is not a command"):
        parse_modelfile('SYSTEM """corta aquí"""  \nresto"""\n')
    with pytest.raises(UserError, match="never closed"):
        parse_modelfile('FROM x\nSYSTEM """abierto\n')


TRICKY_TEXTS = [
    'Di "hola" y usa comillas "dobles"',
    "Rutas C:\\datos\\grafo.txt y \\n literal, ñandú, ¿por qué?, 漢字, 🙂",
    "Varias\nlíneas\n\tcon tabulador\n",
    'Usa """docstrings""" en Python',
    '"empieza y termina con comillas"',
    '  espacios alrededor  ',
    'Fin de línea Windows\r\ny """ en medio',
    "",
]


@pytest.mark.parametrize("system", TRICKY_TEXTS)
def test_system_prompts_read_back_exactly(system):
    assert modelfile_value(render_modelfile("./x.gguf", PHI3, 1, system), "SYSTEM") == system


@pytest.mark.parametrize("folder", ["con espacios", 'con "comillas"', "ñandú \\ barra", 'tres """ comillas'])
def test_gguf_paths_read_back_exactly(tmp_path, folder):
    from tutor_algoritmos.chat import read_modelfile

    gguf = tmp_path / folder / "tutor.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(render_modelfile(f"./{folder}/tutor.gguf", PHI3, 1, TRICKY_TEXTS[3]), encoding="utf-8")
    settings = read_modelfile(modelfile)
    assert settings.gguf == gguf and settings.system == TRICKY_TEXTS[3]
    assert settings.stops == list(PHI3.stops) and (settings.temperature, settings.num_ctx) == (0.7, 4096)


def test_a_system_prompt_that_cannot_be_written_is_refused():
    with pytest.raises(UserError, match='has """ at the end of a line'):
        render_modelfile("./x.gguf", PHI3, 1, 'Cierra con """\ny sigue')
    with pytest.raises(UserError, match="which Ollama drops"):
        render_modelfile("./x.gguf", PHI3, 1, "campana \x07")


def test_free_space_is_checked_before_writing(tmp_path):
    from tutor_algoritmos.errors import UserError
    from tutor_algoritmos.files import ensure_free_space

    with pytest.raises(UserError, match=r"needs about .* GiB in .* but only .* GiB is free"):
        ensure_free_space(tmp_path, 10**18, "the f16 GGUF")
    ensure_free_space(tmp_path, 1, "a byte")
