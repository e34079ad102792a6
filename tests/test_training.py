"""The real SFTTrainer on the tiny model: label mask, coverage, split, lengths, a short run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutor_algoritmos.dataset import Record, to_prompt_completion
from tutor_algoritmos.prompts import SYSTEM_PROMPT

RECORDS = [
    Record(1, "[BFS] - ¿Qué es BFS?", "BFS recorre un grafo por niveles.\n```python\nassert 1 + 1 == 2\n```"),
    Record(2, "[Pilas] - ¿Cómo funciona una pila?", "Una pila es LIFO: el último que entra sale primero."),
]


@pytest.fixture(scope="module")
def trainer(tiny_model, tmp_path_factory):
    from tutor_algoritmos.hardware import choose_precision
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import build_trainer

    out = tmp_path_factory.mktemp("trainer")
    tutor, sft = parse_train_args(["--base_model", str(tiny_model), "--output_dir", str(out)])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    trainer, targets, trainable = build_trainer(tutor, sft, RECORDS, [], tok, choose_precision(), 1)
    return trainer, targets, trainable, tok


def test_label_mask_is_exactly_the_prompt(trainer):
    trainer, _, _, tok = trainer
    for record, row in zip(RECORDS, trainer.train_dataset, strict=True):
        example = to_prompt_completion(record)
        prompt_ids = tok.apply_chat_template(example["prompt"], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"]
        answer_ids = tok.encode(record.output, add_special_tokens=False)
        labels, ids = row["labels"], row["input_ids"]
        assert ids[:len(prompt_ids)] == prompt_ids
        assert prompt_ids[0] == 32006 and prompt_ids[-1] == 32001  # <|system|> ... <|assistant|>
        assert labels[:len(prompt_ids)] == [-100] * len(prompt_ids)
        # every answer token, then <|end|> (32007) and the template's closing eos (32000), is learned
        assert labels[len(prompt_ids):] == ids[len(prompt_ids):] == answer_ids + [32007, 32000]


def test_training_prompt_uses_the_one_system_prompt():
    assert to_prompt_completion(RECORDS[0])["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}


def test_every_layer_carries_adapters_on_fused_projections(trainer):
    trainer, targets, trainable, _ = trainer
    assert targets == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]
    adapted = {n.split(".lora_A")[0].split("layers.")[1]
               for n, _ in trainer.model.named_modules() if n.endswith("lora_A")}
    projections = [("self_attn", "qkv_proj"), ("self_attn", "o_proj"), ("mlp", "gate_up_proj"), ("mlp", "down_proj")]
    assert adapted == {f"{i}.{kind}.{name}" for i in range(2) for kind, name in projections}
    assert trainable == 28_672


def test_recipe_defaults():
    from tutor_algoritmos.train_config import parse_train_args

    tutor, sft = parse_train_args([])
    assert (tutor.base_model, tutor.lora_r, tutor.lora_alpha, tutor.lora_dropout) == \
        ("microsoft/Phi-3.5-mini-instruct", 16, 32, 0.05)
    assert (sft.learning_rate, sft.num_train_epochs, sft.per_device_train_batch_size,
            sft.gradient_accumulation_steps, sft.seed, sft.max_length) == (2e-4, 3, 1, 8, 42, 2048)
    assert sft.completion_only_loss is True


def test_split_is_deterministic_and_stratified():
    from tutor_algoritmos.dataset import split_by_topic

    records = [Record(i, f"[T{i % 4}] - pregunta {i}", "r") for i in range(1, 81)]
    train, held = split_by_topic(records, 0.1)
    assert len(held) == 8 and len(train) == 72
    assert sorted(r.tag for r in held) == ["T0", "T0", "T1", "T1", "T2", "T2", "T3", "T3"]
    assert split_by_topic(list(reversed(records)), 0.1)[1] == sorted(held, key=lambda r: -r.line)


def test_too_long_example_is_reported_by_line(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from tutor_algoritmos.errors import UserError
    from tutor_algoritmos.training import check_lengths

    tok = AutoTokenizer.from_pretrained(tiny_model)
    long = Record(7, "[BFS] - ¿Qué es?", "palabra " * 3000)
    with pytest.raises(UserError, match=r"data.jsonl:7: \d+ tokens > max_length 2048"):
        check_lengths([RECORDS[0], long], tok, 2048, Path("data.jsonl"))


def test_short_run_saves_adapter_config_metrics_and_curve(tiny_model, tmp_path):
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import train

    data = tmp_path / "d.jsonl"
    rows = [{"instruction": f"[T{i % 2}] - ¿Pregunta número {i}?", "output": f"Respuesta {i}. " * 20}
            for i in range(20)]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "adapter"
    tutor, sft = parse_train_args(["--base_model", str(tiny_model), "--data", str(data), "--output_dir", str(out),
                                   "--max_steps", "2", "--gradient_accumulation_steps", "2"])
    train(tutor, sft)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["adapter_config.json", "adapter_model.safetensors", "run_config.json", "metrics.json",
         "log_history.json", "loss_curve.png", "README.md"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_parameters"] == 28_672 and metrics["eval_examples"] == 2
    assert metrics["eval_loss"] > 0
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 16
    assert not (tmp_path / "adapter.partial").exists()
