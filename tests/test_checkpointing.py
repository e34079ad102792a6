"""Activation checkpointing, on by default on CUDA, run on the CPU with the settings CUDA gets: the
same loss and LoRA gradients as without it, and a resume from a checkpoint with it on."""

from __future__ import annotations

import pytest
import torch
from conftest import DIALOGUE

from tutor_algoritmos.dataset import Record

RECORDS = [Record.lesson(1, "[Pilas] - ¿Qué es una pila?", "Una pila es LIFO: el último que entra sale primero."),
           DIALOGUE]


def trainer_for(tiny_model, out, checkpointing: bool, *extra):
    from transformers import AutoTokenizer

    from tutor_algoritmos.hardware import Precision
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import build_trainer

    tutor, model_args, sft = parse_train_args([
        "--model_name_or_path", str(tiny_model), "--output_dir", str(out), "--bf16", "false", "--lora_dropout", "0",
        "--activation_checkpointing", str(checkpointing).lower(), *extra])
    fp32 = Precision("fp32", torch.float32, "cpu")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    trainer, _, _ = build_trainer(tutor, model_args, sft, RECORDS, [], tokenizer, fp32, 1)
    return trainer


def loss_and_grads(trainer):
    model = trainer.model
    if trainer.args.activation_checkpointing:  # what Trainer.train() does before the first step
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=trainer.args.activation_checkpointing_kwargs)
    torch.manual_seed(0)
    with torch.no_grad():  # non-zero adapters, the same in both runs, so every LoRA weight gets a gradient
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    model.train()  # checkpointing only recomputes in training mode; --lora_dropout 0 keeps it deterministic
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    loss = trainer.compute_loss(model, batch, num_items_in_batch=int((batch["labels"][:, 1:] != -100).sum()))
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_checkpointing_gives_the_same_loss_and_lora_gradients(tiny_model, tmp_path):
    plain = trainer_for(tiny_model, tmp_path / "plain", False)
    checkpointed = trainer_for(tiny_model, tmp_path / "ckpt", True)
    loss, grads = loss_and_grads(plain)
    ckpt_loss, ckpt_grads = loss_and_grads(checkpointed)
    assert checkpointed.model.is_activation_checkpointing and not plain.model.is_activation_checkpointing
    assert abs(loss - ckpt_loss) < 1e-6
    assert grads.keys() == ckpt_grads.keys() and len(grads) == 16  # lora_A and lora_B, 4 projections x 2 layers
    for name, grad in grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.slow
def test_a_run_with_checkpointing_resumes_from_its_checkpoint(tiny_model, tmp_path):
    first = trainer_for(tiny_model, tmp_path, True, "--max_steps", "2", "--save_steps", "1",
                        "--gradient_accumulation_steps", "1", "--eval_strategy", "no")
    first.train()
    assert (tmp_path / "checkpoint-2" / "trainer_state.json").is_file()
    resumed = trainer_for(tiny_model, tmp_path, True, "--max_steps", "3", "--save_steps", "1",
                          "--gradient_accumulation_steps", "1", "--eval_strategy", "no")
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert resumed.state.global_step == 3 and resumed.model.is_activation_checkpointing
    steps = [e["step"] for e in resumed.state.log_history if "loss" in e]
    assert steps == [1, 2, 3]  # the first two steps come from the checkpoint's history, the third is new
