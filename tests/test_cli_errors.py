"""User mistakes end in one clear line and exit status 1, never a traceback, in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # each test starts Python with TRL (~4 s); `make test-fast` leaves them out

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}


def run(*args, timeout=120, env=None):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env or ENV,
                          timeout=timeout)


def assert_user_error(result, *needles):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_help_needs_no_gpu_or_network():
    result = run("train_lora.py", "--help")
    assert result.returncode == 0 and "--lora_r" in result.stdout and "--max_length" in result.stdout
    assert run("convert_lora_to_gguf.py", "--help").returncode == 0


def test_broken_dataset_stops_train_before_any_model(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"instruction": "[BFS] - ¿Qué es?", "output": "x"}\n{"instruction": "sin tema"', encoding="utf-8")
    result = run("train_lora.py", "--data", str(data), "--base_model", "build/tiny-phi3", timeout=60)
    assert_user_error(result, f"{data}:2: invalid JSON")


def test_config_typo_and_impossible_values(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("lora_rank: 8\n")
    assert_user_error(run("train_lora.py", "--config", str(recipe)), "lora_rank")
    assert_user_error(run("train_lora.py", "--lora_r", "0"), "--lora_r 0")
    assert_user_error(run("train_lora.py", "--learning_rate", "-1"), "--learning_rate")


def test_unreachable_hub_model_points_to_demo(tmp_path):
    result = run("-m", "tutor_algoritmos.preflight", "--model_name_or_path", "microsoft/Phi-3.5-mini-instruct")
    assert_user_error(result, "Hugging Face Hub", "make demo")


@pytest.fixture
def fake_hub():
    """A local HTTP server answering the hub's model-info API the way huggingface.co does: a gated
    repository (403, X-Error-Code GatedRepo), a missing one (404, RepoNotFound), a server error (500)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hub(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status, code = {"gated": (403, "GatedRepo"), "broken": (500, None)}.get(self.path.rsplit("/", 1)[-1],
                                                                                  (404, "RepoNotFound"))
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {**ENV, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}"}
    server.shutdown()


@pytest.mark.parametrize(("repo", "message"), [
    ("microsoft/gated", "is gated on the Hugging Face Hub — accept its terms at https://huggingface.co/microsoft/gated"),
    ("microsoft/Phi-3.5-mini-instrcut", "does not exist on the Hugging Face Hub (or is private) — check the spelling"),
    ("microsoft/broken", "cannot reach the Hugging Face Hub for microsoft/broken"),
])
def test_a_gated_or_misspelled_model_is_told_apart_from_no_network(fake_hub, repo, message):
    result = run("-m", "tutor_algoritmos.preflight", "--model_name_or_path", repo, env=fake_hub)
    assert_user_error(result, message)


def test_a_model_folder_without_its_tokenizer_names_the_missing_files(tmp_path):
    from tutor_algoritmos.phi35 import phi35_mini_config

    phi35_mini_config().save_pretrained(tmp_path)
    result = run("-m", "tutor_algoritmos.preflight", "--model_name_or_path", str(tmp_path))
    assert_user_error(result, f"cannot load a tokenizer from {tmp_path}", "tokenizer.json or tokenizer.model")


def test_big_model_without_cuda_states_the_wait_and_the_flag_lifts_it(tmp_path):
    """make all's preflight judges the run train_lora.py will make: its token count and its flags."""
    import shutil

    from tutor_algoritmos.phi35 import phi35_mini_config

    phi35_mini_config().save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json"):
        if (ROOT / "build/tiny-phi3" / name).is_file():
            shutil.copy(ROOT / "build/tiny-phi3" / name, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["hidden_size"] == 3072
    preflight = ("-m", "tutor_algoritmos.preflight", "--model_name_or_path", str(tmp_path))
    result = run(*preflight)
    assert_user_error(result, "3.8B parameters on a CPU, about", "days here (", "tokens to train at",
                      "make demo", "--allow_cpu_training")
    allowed = run(*preflight, "--allow_cpu_training", "true")
    assert allowed.returncode == 0 and "preflight OK" in allowed.stderr, allowed.stderr


def test_bad_outtype_and_quant_name_the_choices(tmp_path):
    result = run("convert_lora_to_gguf.py", "convert", "--merged", str(tmp_path), "--outfile", "x.gguf",
                 "--outtype", "q4")
    assert result.returncode == 2 and "choose from 'f32', 'f16', 'bf16', 'q8_0'" in result.stderr
    result = run("convert_lora_to_gguf.py", "quantize", "--gguf", "x.gguf", "--outfile", "y.gguf", "--quant", "Q9")
    assert result.returncode == 2 and "Q4_K_M" in result.stderr


def test_merge_refuses_an_adapter_of_another_base(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "some/other-model"}))
    result = run("convert_lora_to_gguf.py", "merge", "--base", "build/tiny-phi3", "--adapter", str(tmp_path),
                 "--out", str(tmp_path / "merged"))
    assert_user_error(result, "trained on some/other-model")


def test_gguf_llama_cpp_cannot_load_is_named_with_the_fix(tmp_path):
    from conftest import LLAMA_CPP_DIR

    vocab = (LLAMA_CPP_DIR / "models" / "ggml-vocab-phi-3.gguf").read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(vocab[: len(vocab) // 3])  # a copy or download cut short
    result = run("convert_lora_to_gguf.py", "quantize", "--gguf", str(truncated), "--quant", "Q4_K_M",
                 "--outfile", str(tmp_path / "q.gguf"))
    assert_user_error(result, f"{truncated} is not a readable GGUF file", "rebuild it with `make gguf`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated.gguf"]

    # a well-formed GGUF that is not a model (a vocabulary without weights), behind a Modelfile
    not_a_model = tmp_path / "vocab.gguf"
    not_a_model.write_bytes(vocab)
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f'FROM {not_a_model}\nSYSTEM """hola"""\n', encoding="utf-8")
    result = run("-m", "tutor_algoritmos.chat", str(modelfile))
    assert_user_error(result, f"llama.cpp cannot load {not_a_model}", "rebuild it with `make gguf`")


def make_ollama(tmp_path, path_dirs):
    command = ["make", "ollama", f"PYTHON={sys.executable}", "BASE_MODEL=build/tiny-phi3", f"OUT={tmp_path}"]
    env = {**ENV, "PATH": os.pathsep.join(path_dirs)}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)


def test_make_ollama_without_ollama_or_its_server_stops_before_building(tmp_path):
    system_dirs = ["/usr/local/bin", "/usr/bin", "/bin"]
    if any((Path(d) / "ollama").exists() for d in system_dirs):
        pytest.skip("ollama is installed on this machine")
    result = make_ollama(tmp_path / "out", system_dirs)
    assert result.returncode != 0
    assert "ollama is not installed. Get it from https://ollama.com/download" in result.stdout
    assert not (tmp_path / "out" / "adapter").exists()  # nothing was trained first

    fake = tmp_path / "bin" / "ollama"  # an installed client whose server is down: `ollama list` fails
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: could not connect to ollama app, is it running?' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = make_ollama(tmp_path / "out", [str(fake.parent), *system_dirs])
    assert result.returncode != 0
    assert "the Ollama server is not running: start it with 'ollama serve'" in result.stdout
    assert not (tmp_path / "out" / "adapter").exists()


def test_merged_folder_without_tokenizer_model_is_named(tmp_path):
    from transformers import AutoConfig

    merged = tmp_path / "merged"
    AutoConfig.from_pretrained(ROOT / "build" / "tiny-phi3").save_pretrained(merged)
    result = run("convert_lora_to_gguf.py", "convert", "--merged", str(merged), "--outfile", str(tmp_path / "x.gguf"))
    assert_user_error(result, f"{merged} has no tokenizer.model")
    assert not (tmp_path / "x.gguf").exists()


def test_pickled_weights_are_not_loaded_where_safetensors_exist(tmp_path, tiny_model):
    import shutil

    import torch

    from tutor_algoritmos.hardware import Precision
    from tutor_algoritmos.train_config import TutorModelConfig
    from tutor_algoritmos.training import load_base

    base = tmp_path / "base"
    shutil.copytree(tiny_model, base)
    from safetensors.torch import load_file

    real = load_file(base / "model.safetensors")
    torch.save({name: torch.zeros_like(t) for name, t in real.items()}, base / "pytorch_model.bin")
    model = load_base(TutorModelConfig(model_name_or_path=str(base)), Precision("fp32", torch.float32, "cpu"))
    name = "model.layers.0.self_attn.qkv_proj.weight"
    assert real[name].abs().sum() > 0 and torch.equal(model.state_dict()[name], real[name])
