"""The CPU fast path computes the same loss, gradients and dropout as TRL + PEFT, only cheaper,
on lessons and on dialogues (every tutor turn labelled)."""

from __future__ import annotations

import pytest
import torch

from tutor_algoritmos.answer_loss import answer_token_loss
from tutor_algoritmos.cpu_fast_path import FastDropout
from tutor_algoritmos.dataset import Record

RECORDS = [
    Record.lesson(1, "[BFS] - ¿Qué es BFS?", "BFS recorre un grafo por niveles, como las ondas en un estanque."),
    Record(2, "Pilas", ({"role": "user", "content": "¿Cómo funciona una pila?"},
                        {"role": "assistant", "content": "Una pila es LIFO. ¿Qué sale primero de [1, 2]?"},
                        {"role": "user", "content": "el 2"},
                        {"role": "assistant", "content": "Exacto: el último que entró."}), "dialogue"),
]


def test_fast_dropout_drops_p_and_keeps_the_expectation():
    torch.manual_seed(0)
    drop = FastDropout(0.05).train()
    assert drop.p == 3277 / 65536
    x = torch.ones(1000, 1000, dtype=torch.bfloat16)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    # 1e6 draws: the binomial standard deviation of the dropped share is 0.00022
    assert abs(dropped - drop.p) < 0.0015
    assert set(y.unique().tolist()) == {0.0, torch.tensor(1 / (1 - drop.p), dtype=torch.bfloat16).item()}
    assert not torch.equal(drop(x), y)  # a fresh mask every call
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)  # and reproducible from the seed
    assert drop.eval()(x) is x
    assert FastDropout(0.0).train()(x) is x


def test_fast_dropout_masks_each_lane_independently():
    torch.manual_seed(1)
    y = FastDropout(0.5).train()(torch.ones(4, 250_000))
    # the four int16 lanes of one 64-bit draw feed four neighbours: each lane is a fair coin
    for lane in range(4):
        assert abs((y.view(-1)[lane::4] == 0).float().mean().item() - 0.5) < 0.005


@pytest.fixture(scope="module")
def fp32_trainer(tiny_model, tmp_path_factory):
    from transformers import AutoTokenizer

    from tutor_algoritmos.hardware import Precision
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import build_trainer

    tutor, model_args, sft = parse_train_args(["--model_name_or_path", str(tiny_model), "--bf16", "false",
                                   "--output_dir", str(tmp_path_factory.mktemp("fast"))])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    fp32 = Precision("fp32", torch.float32, "cpu")
    trainer, _, _ = build_trainer(tutor, model_args, sft, RECORDS, [], tokenizer, fp32, 1)
    return trainer


def _lora_b_grads(model) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if "lora_B" in n}
    model.zero_grad()
    return grads


def test_answer_only_loss_and_gradients_match_trl(fp32_trainer):
    from trl import SFTTrainer

    trainer = fp32_trainer
    model = trainer.model.eval()  # no dropout: both losses see the same network
    with torch.no_grad():  # make the adapters non-zero so every LoRA weight gets a gradient
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])  # padded batch of 2
    assert batch["input_ids"].shape[0] == 2 and (batch["labels"] == -100).any()
    # the dialogue has two labelled stretches (one per tutor turn), masked in between
    dialogue = (batch["labels"][1] != -100).int().tolist()
    assert sum(1 for a, b in zip([0, *dialogue[:-1]], dialogue, strict=True) if (a, b) == (0, 1)) == 2
    labelled = int((batch["labels"][:, 1:] != -100).sum())

    trl_loss = SFTTrainer.compute_loss(trainer, model, dict(batch), num_items_in_batch=labelled)
    trl_loss.backward()
    trl_grads = _lora_b_grads(model)
    ours, counts = answer_token_loss(model, batch, num_items_in_batch=labelled)
    ours.backward()
    our_grads = _lora_b_grads(model)

    assert counts["labelled"] == labelled
    assert abs(ours.item() - trl_loss.item()) < 1e-5
    assert our_grads.keys() == trl_grads.keys() and len(our_grads) == 8  # 4 projections x 2 layers
    for name, grad in our_grads.items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(grad, trl_grads[name], rtol=1e-4, atol=1e-7, msg=name)


def test_cpu_trainer_uses_fast_dropout_on_every_adapter(fp32_trainer):
    dropouts = [m for m in fp32_trainer.model.modules() if isinstance(m, FastDropout)]
    assert len(dropouts) == 8 and {d.p for d in dropouts} == {3277 / 65536}
    lora_dropouts = [d for m in fp32_trainer.model.modules() if hasattr(m, "lora_dropout")
                     for d in m.lora_dropout.values()]
    assert lora_dropouts == dropouts


def test_bf16_keeps_lora_inputs_in_bf16(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tutor_algoritmos.cpu_fast_path import speed_up_lora_on_cpu

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16),
                           LoraConfig(r=4, target_modules=["qkv_proj"], lora_dropout=0.1))
    assert speed_up_lora_on_cpu(model, bf16=True) == 2
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    assert len(layers) == 2 and not any(m.cast_input_dtype_enabled for m in layers)
