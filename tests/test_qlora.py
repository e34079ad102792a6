"""QLoRA (--load_in_4bit) on the CPU, where bitsandbytes runs NF4 since 0.47: the base loads in
4-bit, LoRA trains with the loss falling, the adapter merges into the 16-bit base (never the 4-bit
one), and that merged model converts to a GGUF whose logits match it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import LLAMA_CPP_DIR, llama_logits

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out

ROWS = [{"instruction": "[Pilas] - ¿Qué es una pila?",
         "output": "Una pila es LIFO: el último que entra es el primero que sale. " * 4}] * 8


def args(tiny_model, data, out, *extra):
    from tutor_algoritmos.train_config import parse_train_args

    return parse_train_args(["--model_name_or_path", str(tiny_model), "--data", str(data), "--output_dir", str(out),
                             "--load_in_4bit", "true", "--eval_fraction", "0", "--eval_strategy", "no", *extra])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("qlora") / "pila.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    return path


def test_the_base_loads_in_4_bit_with_lora_on_every_projection(tiny_model, data, tmp_path):
    import bitsandbytes as bnb
    from transformers import AutoTokenizer

    from tutor_algoritmos.dataset import Record
    from tutor_algoritmos.hardware import choose_precision
    from tutor_algoritmos.training import build_trainer

    tutor, model_args, sft = args(tiny_model, data, tmp_path)
    rows = [Record.lesson(1, ROWS[0]["instruction"], ROWS[0]["output"])]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    trainer, targets, trainable = build_trainer(tutor, model_args, sft, rows, [], tokenizer, choose_precision(), 1)
    four_bit = [name for name, m in trainer.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) == 8 and all(name.endswith(".base_layer") for name in four_bit)  # 4 projections x 2 layers
    assert targets == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"] and trainable == 28_672
    assert {m.weight.quant_type for m in trainer.model.modules() if isinstance(m, bnb.nn.Linear4bit)} == {"nf4"}


@pytest.fixture(scope="module")
def qlora_adapter(tiny_model, data, tmp_path_factory):
    from tutor_algoritmos.training import train

    out = tmp_path_factory.mktemp("qlora") / "adapter"
    train(*args(tiny_model, data, out, "--max_steps", "3", "--gradient_accumulation_steps", "1",
                "--learning_rate", "5e-3"))  # a high rate so that 3 steps on one row move the loss clearly
    return out


def test_lora_on_the_4_bit_base_trains(qlora_adapter):
    losses = [e["loss"] for e in json.loads((qlora_adapter / "log_history.json").read_text()) if "loss" in e]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    assert json.loads((qlora_adapter / "run_config.json").read_text())["model"]["load_in_4bit"] is True


def test_the_adapter_merges_into_the_16_bit_base_and_converts_with_matching_logits(tiny_model, qlora_adapter,
                                                                                     tmp_path):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tutor_algoritmos.conversion import convert_to_gguf
    from tutor_algoritmos.dataset import with_system
    from tutor_algoritmos.merge import merge

    merged = merge(str(tiny_model), qlora_adapter, tmp_path / "merged")
    config = json.loads((merged / "config.json").read_text())
    assert "quantization_config" not in config  # merged into the 16-bit weights, not the NF4 ones
    with safe_open(str(next(merged.glob("*.safetensors"))), "pt") as weights:
        dtypes = {weights.get_slice(k).get_dtype() for k in weights.keys()}
    assert dtypes <= {"F16", "BF16", "F32"}

    gguf = convert_to_gguf(merged, tmp_path / "qlora-f32.gguf", "f32", LLAMA_CPP_DIR, "tutor-algoritmos")
    tok = AutoTokenizer.from_pretrained(merged)
    text = tok.apply_chat_template(with_system([{"role": "user", "content": "¿Qué es una pila?"}]), tokenize=False,
                                   add_generation_prompt=True)
    hf_ids = tok(text, add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    with torch.no_grad():
        hf_logits = model(torch.tensor([hf_ids])).logits[0].numpy()
    ids, logits = llama_logits(gguf, text)
    assert ids == hf_ids
    assert np.abs(logits - hf_logits).max() < 1e-3
