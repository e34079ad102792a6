"""LoRA fine-tuning with TRL's SFTTrainer: data -> checks -> model -> adapter, resumable."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

from tutor_algoritmos.chat_formats import training_chat_template
from tutor_algoritmos.dataset import (
    Record,
    count_by_kind,
    load_records,
    split_by_topic,
    to_conversation,
    token_lengths,
    too_long,
)
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import publish, sha256_of, temporary_sibling
from tutor_algoritmos.hardware import check_base_model_reachable, load_tokenizer, plan_for_model
from tutor_algoritmos.lora_targets import check_coverage, resolve_targets
from tutor_algoritmos.train_config import TutorArguments, TutorModelConfig, TutorSFTConfig, fit_to_hardware

logger = logging.getLogger("tutor")


def check_lengths(records: list[Record], tokenizer, max_length: int, data: Path) -> list[int]:
    """Every row's token count; a UserError naming each row training would have to cut."""
    lengths = token_lengths(records, tokenizer)
    over = too_long(records, lengths, max_length)
    if over:
        lines = "\n".join(f"{data}:{r.line}: {n} tokens > max_length {max_length} — shorten the "
                          "row or raise --max_length (it would be cut, losing its <|end|>)"
                          for r, n in over)
        raise UserError(f"{len(over)} example(s) would be truncated:\n{lines}")
    return lengths


def target_list(model: TutorModelConfig) -> list[str]:
    """TRL keeps a one-item --lora_target_modules as a plain string."""
    targets = model.lora_target_modules
    return [targets] if isinstance(targets, str) else list(targets)


def run_fingerprint(tutor: TutorArguments, model: TutorModelConfig, sft: TutorSFTConfig, data: Path) -> dict:
    """What a checkpoint must share with this run to be resumed."""
    return {
        "base_model": model.model_name_or_path, "data_sha256": sha256_of(data),
        "eval_fraction": tutor.eval_fraction, "lora_r": model.lora_r, "lora_alpha": model.lora_alpha,
        "lora_dropout": model.lora_dropout, "lora_target_modules": target_list(model),
        "load_in_4bit": model.load_in_4bit, "learning_rate": sft.learning_rate,
        "num_train_epochs": sft.num_train_epochs, "max_steps": sft.max_steps,
        "per_device_train_batch_size": sft.per_device_train_batch_size,
        "gradient_accumulation_steps": sft.gradient_accumulation_steps,
        "max_length": sft.max_length, "seed": sft.seed,
    }


def is_main_process() -> bool:
    """Rank 0 of an `accelerate launch` / torchrun job (or a plain run): the one that writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(partial: Path, fingerprint: dict) -> str | None:
    """The newest complete checkpoint of an interrupted run of the same recipe, if any.

    The Trainer writes trainer_state.json last, so a checkpoint folder without it was cut off
    mid-save (Ctrl-C or a kill during the save): the main process removes it and every process
    resumes from the one before it.
    """
    if not partial.is_dir():
        return None
    checkpoints = sorted(partial.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True)
    for checkpoint in checkpoints:
        if (checkpoint / "trainer_state.json").is_file():
            break
        if is_main_process():
            logger.warning("removing %s: its save was interrupted", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
    else:
        return None
    stamp = partial / "run_fingerprint.json"
    saved = json.loads(stamp.read_text()) if stamp.is_file() else {}
    changed = sorted(k for k in fingerprint if saved.get(k) != fingerprint[k])
    if changed:
        raise UserError(f"{partial} holds checkpoints of a different run (changed: {', '.join(changed)}) "
                        f"— delete it to start over: rm -rf {partial}")
    return str(checkpoint)


def load_base(model_args: TutorModelConfig, precision, device_map: dict | None = None):
    """The frozen base, in the hardware's precision unless --dtype chose one; 4-bit NF4 with --load_in_4bit."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    dtype = precision.load_dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    kwargs = {"dtype": dtype, "trust_remote_code": False}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    if model_args.load_in_4bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UserError("--load_in_4bit needs bitsandbytes, pinned in requirements.txt: run `make deps`") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=model_args.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=model_args.use_bnb_nested_quant,
            bnb_4bit_compute_dtype=precision.load_dtype)  # the matmuls run in the training precision
        # the 4-bit weights live where training runs: this process's GPU (the plan's {"": LOCAL_RANK}, so
        # NPROC=4 puts one copy on each GPU), or the CPU (bitsandbytes >= 0.47)
        kwargs["device_map"] = device_map or ({"": 0} if precision.device == "cuda" else {"": "cpu"})
    return AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, **kwargs)


def build_trainer(tutor: TutorArguments, model_args: TutorModelConfig, sft: TutorSFTConfig, train_records: list[Record],
                  eval_records: list[Record], tokenizer, precision, total_params: int, device_map: dict | None = None):
    """SFTTrainer with LoRA on the resolved projections, coverage verified before any step."""
    from datasets import Dataset
    from trl import SFTTrainer, get_peft_config

    from tutor_algoritmos.cpu_fast_path import TutorSFTTrainer, speed_up_lora_on_cpu

    # With {% generation %} markers TRL labels every answer; the text is the original template's
    tokenizer.chat_template = training_chat_template(tokenizer)
    model = load_base(model_args, precision, device_map)
    targets = resolve_targets(model, target_list(model_args))
    # TRL's own LoraConfig from ModelConfig, with the names resolved against this model's modules
    peft_config = get_peft_config(dataclasses.replace(model_args, lora_target_modules=targets))
    if not eval_records:
        sft = dataclasses.replace(sft, eval_strategy="no")
    trainer_class = TutorSFTTrainer if tutor.cpu_fast_path else SFTTrainer
    trainer = trainer_class(
        model=model, args=sft, processing_class=tokenizer, peft_config=peft_config,
        train_dataset=Dataset.from_list([to_conversation(r) for r in train_records]),
        eval_dataset=Dataset.from_list([to_conversation(r) for r in eval_records]) if eval_records else None,
    )
    check_coverage(trainer.model, targets)
    if precision.device == "cpu" and tutor.cpu_fast_path:
        replaced = speed_up_lora_on_cpu(trainer.model, precision.bf16)
        logger.info("CPU fast path: answer-only LM head, %d LoRA dropouts with 16-bit masks%s", replaced,
                    ", bf16 LoRA inputs" if precision.bf16 else "")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    logger.info("LoRA r=%d alpha=%d on %s: %s trainable parameters (%.2f%% of %s); precision %s on %s",
                model_args.lora_r, model_args.lora_alpha, ", ".join(targets), f"{trainable:,}",
                100 * trainable / total_params, f"{total_params:,}", precision.name, precision.device)
    return trainer, targets, trainable


def prepare(tutor: TutorArguments, model_args: TutorModelConfig, sft: TutorSFTConfig):
    """Every check that needs no weights: data, base model, lengths, hardware. Seconds, not minutes.
    Returns the SFT config fitted to this machine's hardware (precision, device, checkpointing)."""
    data = Path(tutor.data)
    records = load_records(data)  # structural problems stop us before any model is touched
    base = model_args.model_name_or_path
    check_base_model_reachable(base)
    tokenizer = load_tokenizer(base)
    if not tokenizer.chat_template:
        raise UserError(f"{base} has no chat template — use an instruct model")
    lengths = check_lengths(records, tokenizer, sft.max_length, data)
    epochs = sft.num_train_epochs if sft.max_steps <= 0 else 1  # a --max_steps run is short anyway
    plan, total_params = plan_for_model(base, model_args.load_in_4bit, int(sum(lengths) * epochs),
                                        tutor.allow_cpu_training)
    return records, tokenizer, plan, total_params, fit_to_hardware(sft, plan)


def train(tutor: TutorArguments, model_args: TutorModelConfig, sft: TutorSFTConfig) -> Path:
    records, tokenizer, plan, total_params, sft = prepare(tutor, model_args, sft)
    precision = plan.precision
    train_records, eval_records = split_by_topic(records, tutor.eval_fraction)
    logger.info("%d examples: %d train (%s), %d held out (%s; %.0f%%, stratified by topic)", len(records),
                len(train_records), count_by_kind(train_records), len(eval_records),
                count_by_kind(eval_records) or "none", 100 * tutor.eval_fraction)
    out = Path(sft.output_dir)
    partial = out.with_name(out.name + ".partial")
    fingerprint = run_fingerprint(tutor, model_args, sft, Path(tutor.data))
    resume_from = last_checkpoint(partial, fingerprint)
    if is_main_process():
        partial.mkdir(parents=True, exist_ok=True)
        (partial / "run_fingerprint.json").write_text(json.dumps(fingerprint, indent=2))

    trainer, targets, trainable = build_trainer(
        tutor, model_args, dataclasses.replace(sft, output_dir=str(partial)), train_records, eval_records,
        tokenizer, precision, total_params, plan.device_map)
    world = trainer.accelerator.num_processes
    logger.info("%d sequences per optimizer step = %d process(es) x %d per micro-batch x %d accumulated",
                world * sft.per_device_train_batch_size * sft.gradient_accumulation_steps, world,
                sft.per_device_train_batch_size, sft.gradient_accumulation_steps)
    if resume_from:
        logger.info("resuming from %s", resume_from)
    result = trainer.train(resume_from_checkpoint=resume_from)
    logger.info("rank %d of %d (%s): %d optimizer steps done", trainer.accelerator.process_index, world,
                trainer.accelerator.state.backend or "single process", trainer.state.global_step)
    metrics = {**result.metrics, "trainable_parameters": trainable, "total_parameters": total_params,
               "lora_targets": targets, "precision": precision.name, "device": precision.device,
               "train_examples": len(train_records), "eval_examples": len(eval_records), "processes": world}
    final_eval = [e for e in trainer.state.log_history if "eval_loss" in e and e["step"] == trainer.state.global_step]
    if eval_records and sft.eval_strategy != "no":  # the epoch-end eval may already have run at the last step
        metrics.update({k: v for k, v in final_eval[-1].items() if k.startswith("eval_")} if final_eval
                       else trainer.evaluate())
    if trainer.is_world_process_zero():
        save_adapter(trainer, out, tutor, model_args, sft, metrics)
        shutil.rmtree(partial, ignore_errors=True)
    return out


def save_adapter(trainer, out: Path, tutor: TutorArguments, model_args: TutorModelConfig, sft: TutorSFTConfig,
                 metrics: dict) -> None:
    """Write everything into <out>.tmp, then swap it in: a half-written adapter never looks done."""
    from tutor_algoritmos.loss_curve import plot_loss_curve

    tmp = temporary_sibling(out)
    trainer.model.save_pretrained(tmp)
    run_config = {"tutor": dataclasses.asdict(tutor), "model": dataclasses.asdict(model_args), "sft": sft.to_dict()}
    (tmp / "run_config.json").write_text(json.dumps(run_config, indent=2, default=str))
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    (tmp / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=2))
    plot_loss_curve(trainer.state.log_history, tmp / "loss_curve.png",
                    f"LoRA r={model_args.lora_r} on {Path(model_args.model_name_or_path).name}")
    publish(tmp, out)
    logger.info("adapter saved to %s (eval_loss %s)", out, metrics.get("eval_loss", "n/a"))
