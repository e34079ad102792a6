"""`make gguf quantize modelfile` on the tiny Phi-3.5, then the GGUF against the merged HF model."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import LLAMA_CPP_DIR, ROOT, llama_logits

from tutor_algoritmos.dataset import with_system

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out

QUESTION = "¿Por qué Dijkstra no funciona con pesos negativos? Explícalo con un grafo pequeño."
MAKE_GOALS = ["gguf", "quantize", "modelfile"]


def make(out, *goals, extra=()):
    return subprocess.run(["make", *goals, f"PYTHON={sys.executable}", "BASE_MODEL=build/tiny-phi3",
                           f"OUT={out}", f"LLAMA_CPP_DIR={LLAMA_CPP_DIR}", "TRAIN_ARGS=--max_steps 2", *extra],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.fixture(scope="module")
def pipeline(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    result = make(out, *MAKE_GOALS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def merged_logits(pipeline):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pipeline / "merged")
    messages = with_system([{"role": "user", "content": QUESTION}])
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(pipeline / "merged", dtype=torch.float32)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    return text, ids, logits


def test_outputs_exist_and_make_considers_them_done(pipeline):
    names = {p.name for p in pipeline.iterdir()}
    assert {"adapter", "merged", "tutor_algoritmos.gguf", "tutor_algoritmos-Q4_K_M.gguf", "Modelfile"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    merged_files = {p.name for p in (pipeline / "merged").iterdir()}
    assert {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"} <= merged_files
    assert (pipeline / "adapter" / "loss_curve.png").stat().st_size > 0
    query = subprocess.run(["make", "-q", *MAKE_GOALS, f"PYTHON={sys.executable}", "BASE_MODEL=build/tiny-phi3",
                            f"OUT={pipeline}", f"LLAMA_CPP_DIR={LLAMA_CPP_DIR}", "TRAIN_ARGS=--max_steps 2"], cwd=ROOT)
    assert query.returncode == 0  # nothing to redo


def bare_make(out, *args):
    """make with only OUT: the folder supplies BASE_MODEL, DATA and TRAIN_ARGS it remembers."""
    return subprocess.run(["make", "--no-print-directory", *args, f"PYTHON={sys.executable}", f"OUT={out}",
                           f"LLAMA_CPP_DIR={LLAMA_CPP_DIR}"],
                          cwd=ROOT, capture_output=True, text=True)


def test_changed_variable_redoes_only_its_steps_and_make_n_changes_nothing(pipeline):
    vars_before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in (pipeline / ".vars").iterdir()}
    dry = make(pipeline, "-n", "gguf", extra=["OUTTYPE=f32"])
    assert "convert_lora_to_gguf.py convert" in dry.stdout and "train_lora.py" not in dry.stdout
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in (pipeline / ".vars").iterdir()} == vars_before
    assert bare_make(pipeline, "-q", *MAKE_GOALS).returncode == 0


def test_the_folder_remembers_how_it_was_built(pipeline):
    # what `make demo` tells the user to run next: no BASE_MODEL, no TRAIN_ARGS, and nothing rebuilt
    dry = bare_make(pipeline, "-n", "chat")
    assert dry.returncode == 0 and dry.stdout.splitlines() == \
        [f"{sys.executable} -m tutor_algoritmos.chat {pipeline}/Modelfile"]
    # a step another target runs (make bench builds base.gguf without TRAIN_ARGS) invalidates nothing
    base = bare_make(pipeline, f"{pipeline}/base.gguf", "OUTTYPE=f16", "QUANT=Q4_K_M")
    assert base.returncode == 0, base.stderr[-2000:]
    assert (pipeline / ".vars" / "train_args").read_text() == "--max_steps 2"
    assert bare_make(pipeline, "-q", *MAKE_GOALS).returncode == 0


def test_dry_run_checks_the_inputs_and_writes_nothing(pipeline, tmp_path):
    convert = [sys.executable, "convert_lora_to_gguf.py", "convert", "--dry-run", "--llama-cpp-dir", str(LLAMA_CPP_DIR)]
    ok = subprocess.run([*convert, "--merged", str(pipeline / "merged"), "--outfile", str(tmp_path / "x.gguf")],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "dry run" in ok.stderr and "phi3" in ok.stderr
    bad = subprocess.run([*convert, "--merged", str(tmp_path), "--outfile", str(tmp_path / "x.gguf")],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and "is not a model folder" in bad.stderr and "Traceback" not in bad.stderr
    quantize = [sys.executable, "convert_lora_to_gguf.py", "quantize", "--dry-run",
                "--outfile", str(tmp_path / "q.gguf")]
    ok = subprocess.run([*quantize, "--gguf", str(pipeline / "tutor_algoritmos.gguf")], cwd=ROOT,
                        capture_output=True, text=True)
    (tmp_path / "fake.gguf").write_bytes(b"not a gguf")
    bad = subprocess.run([*quantize, "--gguf", str(tmp_path / "fake.gguf")], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and bad.returncode == 1 and "is not a readable GGUF" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf"]


def test_gguf_metadata(pipeline):
    from tutor_algoritmos.gguf_tools import check_gguf, end_of_generation_ids

    info = check_gguf(pipeline / "tutor_algoritmos.gguf", "phi3")
    assert "phi-3" in info.name.lower() and info.chat_format.name == "phi3"
    assert 32007 in end_of_generation_ids(pipeline / "tutor_algoritmos-Q4_K_M.gguf")


@pytest.fixture(scope="module")
def f32_gguf(pipeline, tmp_path_factory):
    f32 = tmp_path_factory.mktemp("f32") / "f32.gguf"
    subprocess.run([sys.executable, "convert_lora_to_gguf.py", "convert", "--merged", str(pipeline / "merged"),
                    "--outfile", str(f32), "--outtype", "f32", "--llama-cpp-dir", str(LLAMA_CPP_DIR)],
                   cwd=ROOT, check=True, capture_output=True)
    return f32


# chat, eval and bench run llama.cpp with flash attention on (its own default): it must not change the model
@pytest.mark.parametrize("flash_attn", [False, True], ids=["plain_attention", "flash_attention"])
def test_f32_gguf_matches_merged_model(f32_gguf, merged_logits, flash_attn):
    text, hf_ids, hf_logits = merged_logits
    ids, logits = llama_logits(f32_gguf, text, flash_attn)
    assert ids == hf_ids
    assert np.abs(logits - hf_logits).max() < 1e-3


@pytest.mark.parametrize("flash_attn", [False, True], ids=["plain_attention", "flash_attention"])
def test_f16_gguf_matches_merged_model(pipeline, merged_logits, flash_attn):
    text, hf_ids, hf_logits = merged_logits
    ids, logits = llama_logits(pipeline / "tutor_algoritmos.gguf", text, flash_attn)
    assert ids == hf_ids
    assert np.abs(logits - hf_logits).max() < 5e-2


def test_quantized_gguf_loads_and_generates(pipeline, merged_logits):
    from llama_cpp import Llama

    llm = Llama(str(pipeline / "tutor_algoritmos-Q4_K_M.gguf"), n_ctx=512, verbose=False, n_threads=2)
    try:
        out = llm.create_completion(merged_logits[0], max_tokens=8, temperature=0.0)
        assert out["usage"]["completion_tokens"] >= 1
    finally:
        llm.close()


def test_modelfile_points_at_the_gguf_next_to_it(pipeline):
    text = (pipeline / "Modelfile").read_text(encoding="utf-8")
    assert "FROM ./tutor_algoritmos.gguf\n" in text
    assert (pipeline / "tutor_algoritmos.gguf").is_file()


def test_chat_streams_with_the_modelfile_settings(pipeline):
    from tutor_algoritmos.chat import chat, read_modelfile
    from tutor_algoritmos.prompts import SYSTEM_PROMPT

    settings = read_modelfile(pipeline / "Modelfile")
    assert (settings.gguf, settings.system, settings.temperature, settings.num_ctx) == \
        ((pipeline / "tutor_algoritmos.gguf").resolve(), SYSTEM_PROMPT, 0.7, 4096)
    assert settings.stops == ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>"]
    questions, written = iter(["¿Qué es BFS?", "salir"]), []
    chat(settings, read=lambda prompt: next(questions), write=written.append, max_tokens=8)
    assert written[0].startswith("Tutor de Algoritmos") and written[-1] == "\n"
    pieces = [w for w in written[1:-1] if w]
    assert 1 <= len(pieces) <= 8  # streamed one token at a time, at most max_tokens


def test_chat_forgets_old_exchanges_with_a_notice_and_resets(pipeline):
    import dataclasses

    from tutor_algoritmos.chat import chat, read_modelfile

    settings = dataclasses.replace(read_modelfile(pipeline / "Modelfile"), num_ctx=640)
    long = "¿Me explicas otra vez el recorrido en anchura con un ejemplo? " * 12  # ~170 tokens
    questions, written = iter([long, long, long, "/reset", "hola", "x " * 900, "salir"]), []
    chat(settings, read=lambda prompt: next(questions), write=written.append, max_tokens=64)
    notices = [w for w in written if w.startswith("(")]
    assert any(n.startswith("(olvido el intercambio más antiguo") for n in notices), notices
    assert "(conversación reiniciada)\n" in notices
    assert notices[-1].startswith("(la pregunta es demasiado larga")


