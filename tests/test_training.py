"""The real SFTTrainer on the tiny model: label masks of lessons and dialogues, no topic tag in the
tokens, coverage, split, lengths, a short run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DIALOGUE, labelled_runs

from tutor_algoritmos.dataset import Record, to_conversation
from tutor_algoritmos.prompts import SYSTEM_PROMPT

RECORDS = [
    Record.lesson(1, "[BFS] - ¿Qué es BFS?", "BFS recorre un grafo por niveles.\n```python\nassert 1 + 1 == 2\n```"),
    Record.lesson(2, "[Pilas] - ¿Cómo funciona una pila?", "Una pila es LIFO: el último que entra sale primero."),
]
@pytest.fixture(scope="module")
def trainer(tiny_model, tmp_path_factory):
    from tutor_algoritmos.hardware import choose_precision
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import build_trainer

    out = tmp_path_factory.mktemp("trainer")
    tutor, model_args, sft = parse_train_args(["--model_name_or_path", str(tiny_model), "--output_dir", str(out)])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    trainer, targets, trainable = build_trainer(tutor, model_args, sft, [*RECORDS, DIALOGUE], [], tok,
                                                choose_precision(), 1)
    return trainer, targets, trainable, tok


def test_label_mask_of_a_lesson_is_exactly_the_prompt(trainer):
    trainer, _, _, tok = trainer
    for record, row in zip(RECORDS, trainer.train_dataset, strict=False):
        messages = to_conversation(record)["messages"]
        prompt_ids = tok.apply_chat_template(messages[:-1], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"]
        answer_ids = tok.encode(record.answers[0], add_special_tokens=False)
        labels, ids = row["labels"], row["input_ids"]
        assert ids[:len(prompt_ids)] == prompt_ids
        assert prompt_ids[0] == 32006 and prompt_ids[-1] == 32001  # <|system|> ... <|assistant|>
        assert labels[:len(prompt_ids)] == [-100] * len(prompt_ids)
        # every answer token, then <|end|> (32007) and the template's closing eos (32000), is learned
        assert labels[len(prompt_ids):] == ids[len(prompt_ids):] == answer_ids + [32007, 32000]


def test_every_turn_of_a_dialogue_is_labelled_and_nothing_else(trainer):
    trainer, _, _, tok = trainer
    row = trainer.train_dataset[2]
    ids, labels = row["input_ids"], row["labels"]
    runs = labelled_runs(labels)
    assert len(runs) == 3  # one stretch per tutor turn, none in the system prompt or a student turn
    for (start, end), answer in zip(runs, DIALOGUE.answers, strict=True):
        answer_ids = tok.encode(answer, add_special_tokens=False)
        assert ids[start - 1] == 32001  # <|assistant|> itself is prompt, masked
        assert labels[start] == answer_ids[0] and tok.convert_ids_to_tokens(answer_ids[0]).startswith("▁")
        expected = answer_ids + [32007] + ([32000] if end == len(ids) else [])
        assert labels[start:end] == ids[start:end] == expected
        assert labels[end - 1] == (32000 if end == len(ids) else 32007)
        if end < len(ids):
            assert ids[end] == 32010  # the student's <|user|> follows the answer's <|end|>, unlabelled
    assert ids[0] == 32006 and ids.count(32010) == 3 and ids.count(32001) == 3


def test_the_topic_tag_never_reaches_the_tokens(trainer):
    trainer, _, _, tok = trainer
    for record, row in zip([*RECORDS, DIALOGUE], trainer.train_dataset, strict=True):
        text = tok.decode(row["input_ids"])
        assert f"[{record.topic}]" not in text and " - " not in text.split("<|user|>")[1][:4]
        assert record.question in text
    # the seed row's user turn is the question alone
    assert to_conversation(RECORDS[0])["messages"][1] == {"role": "user", "content": "¿Qué es BFS?"}


def test_training_template_renders_exactly_like_the_models(tokenizer):
    from tutor_algoritmos.chat_formats import training_chat_template

    template = training_chat_template(tokenizer)
    assert "{% generation %}" in template.replace("{%- generation %}", "{% generation %}")
    messages = to_conversation(DIALOGUE)["messages"]
    assert tokenizer.apply_chat_template(messages, tokenize=False, chat_template=template) == \
        tokenizer.apply_chat_template(messages, tokenize=False)


def test_training_prompt_uses_the_one_system_prompt():
    assert to_conversation(DIALOGUE)["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["role"] for m in to_conversation(DIALOGUE)["messages"]].count("system") == 1


def test_every_layer_carries_adapters_on_fused_projections(trainer):
    trainer, targets, trainable, _ = trainer
    assert targets == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]
    adapted = {n.split(".lora_A")[0].split("layers.")[1]
               for n, _ in trainer.model.named_modules() if n.endswith("lora_A")}
    projections = [("self_attn", "qkv_proj"), ("self_attn", "o_proj"), ("mlp", "gate_up_proj"), ("mlp", "down_proj")]
    assert adapted == {f"{i}.{kind}.{name}" for i in range(2) for kind, name in projections}
    assert trainable == 28_672


def test_split_is_deterministic_and_stratified():
    from tutor_algoritmos.dataset import split_by_topic

    records = [Record.lesson(i, f"[T{i % 4}] - pregunta {i}", "r") for i in range(1, 81)]
    train, held = split_by_topic(records, 0.1)
    assert len(held) == 8 and len(train) == 72
    assert sorted(r.topic for r in held) == ["T0", "T0", "T1", "T1", "T2", "T2", "T3", "T3"]
    assert split_by_topic(list(reversed(records)), 0.1)[1] == sorted(held, key=lambda r: -r.line)


def test_too_long_example_is_reported_by_line(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    from tutor_algoritmos.errors import UserError
    from tutor_algoritmos.training import check_lengths

    tok = AutoTokenizer.from_pretrained(tiny_model)
    long = Record.lesson(7, "[BFS] - ¿Qué es?", "palabra " * 3000)
    turns = [{"role": "user", "content": "¿y?"}, {"role": "assistant", "content": "palabra " * 300}] * 6
    long_dialogue = Record(9, "BFS", tuple(turns), "dialogue")  # each turn is short, the whole is not
    with pytest.raises(UserError, match=r"2 example\(s\).*\n.*data.jsonl:7: \d+ tokens > max_length 2048.*\n"
                                        r".*data.jsonl:9: \d+ tokens > max_length 2048"):
        check_lengths([RECORDS[0], long, DIALOGUE, long_dialogue], tok, 2048, Path("data.jsonl"))


@pytest.mark.slow
def test_short_run_saves_adapter_config_metrics_and_curve(tiny_model, tmp_path):
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import train

    data = tmp_path / "d.jsonl"
    rows = [{"instruction": f"[T{i % 2}] - ¿Pregunta número {i}?", "output": f"Respuesta {i}. " * 20}
            for i in range(20)]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "adapter"
    tutor, model_args, sft = parse_train_args(["--model_name_or_path", str(tiny_model), "--data", str(data),
                                               "--output_dir", str(out), "--eval_fraction", "0.2",
                                               "--max_steps", "2", "--gradient_accumulation_steps", "2"])
    train(tutor, model_args, sft)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["adapter_config.json", "adapter_model.safetensors", "run_config.json", "metrics.json",
         "log_history.json", "loss_curve.png", "README.md"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trainable_parameters"] == 28_672 and metrics["eval_examples"] == 4
    assert metrics["eval_loss"] > 0
    # make eval holds out what this run held out (0.2 here: 4 rows), never the recipe's 0.1 (2 rows)
    from tutor_algoritmos.evaluation import held_out, run_eval_fraction

    assert run_eval_fraction(out) == 0.2 and len(held_out(data, None, run_eval_fraction(out))) == 4
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 16
    assert not (tmp_path / "adapter.partial").exists()
