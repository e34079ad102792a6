"""One timed training run for `make bench`, in its own process so its peak memory is its own.

    python -m tutor_algoritmos.bench.train_profile --profile seed  --base out/demo/base --out seed.json
    python -m tutor_algoritmos.bench.train_profile --profile tutor --base out/demo/base --out tutor.json

Every profile trains the same LoRA (r=16, alpha=32, dropout 0.05 on every projection) on the
same first `--sequences` lessons of the train split, one epoch, 8 sequences per optimizer step,
so tokens/s are comparable and the token counts must agree.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path

from tutor_algoritmos import recipe

logger = logging.getLogger("tutor")

# name -> (what it is, extra train_lora.py flags on top of the hardware's default profile)
PROFILES = {
    "seed": ("TRL SFTTrainer + PEFT as the founding document writes them: fp32, batch 1 x 8", None),
    "tutor": ("train_lora.py's default profile for this machine", []),
    "stock_bf16": ("bf16 autocast on a bf16 base, TRL + PEFT as they come", ["--cpu_fast_path", "false"]),
    "padded_batch": ("one micro-batch of 8 padded sequences instead of 8 x 1",
                     ["--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "1"]),
    # TRL packs best-fit into rows of max_length tokens: 10,240 holds the 8 lessons (9,394 tokens)
    # in one row whose position_ids restart at each lesson, so attention stays within a lesson
    "packed_batch": ("one micro-batch of 8 sequences packed into one row (position_ids restart per lesson)",
                     ["--gradient_accumulation_steps", "1", "--packing", "true", "--max_length", "10240"]),
    "checkpointing": ("default profile + activation checkpointing", ["--activation_checkpointing", "true"]),
    "qlora": ("default profile with the frozen base in 4-bit NF4 (QLoRA; bitsandbytes on the CPU)",
              ["--load_in_4bit", "true"]),
}
SEQUENCES_PER_STEP = recipe.BATCH_SIZE * recipe.GRADIENT_ACCUMULATION


def seed_trainer(base: str, records, output_dir: str):
    """The plain recipe: no precision choice, no fast path, nothing of ours but the data format."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tutor_algoritmos.chat_formats import training_chat_template
    from tutor_algoritmos.dataset import to_conversation
    from tutor_algoritmos.lora_targets import DOCUMENTED_TARGETS, resolve_targets

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    args = SFTConfig(output_dir=output_dir, per_device_train_batch_size=recipe.BATCH_SIZE,
                     gradient_accumulation_steps=recipe.GRADIENT_ACCUMULATION, learning_rate=recipe.LEARNING_RATE,
                     num_train_epochs=1, max_length=recipe.MAX_LENGTH, seed=recipe.SEED, bf16=False,
                     use_cpu=not torch.cuda.is_available(), save_strategy="no", report_to="none", logging_steps=1,
                     assistant_only_loss=True)
    # resolved like train_lora.py's, so both runs adapt the same modules (on Phi-3 the list as
    # written would match only o_proj and down_proj)
    peft = LoraConfig(task_type="CAUSAL_LM", r=recipe.LORA_R, lora_alpha=recipe.LORA_ALPHA,
                      lora_dropout=recipe.LORA_DROPOUT,
                      target_modules=resolve_targets(model, list(DOCUMENTED_TARGETS)))
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = training_chat_template(tokenizer)  # every tutor turn labelled, as in training
    return SFTTrainer(model=model, args=args, processing_class=tokenizer,
                      peft_config=peft, train_dataset=Dataset.from_list([to_conversation(r) for r in records]))


def tutor_trainer(base: str, data: str, records, output_dir: str, extra: list[str]):
    from transformers import AutoTokenizer

    from tutor_algoritmos.hardware import preflight
    from tutor_algoritmos.train_config import fit_to_hardware, parse_train_args
    from tutor_algoritmos.training import build_trainer

    tutor, model_args, sft = parse_train_args(["--model_name_or_path", base, "--data", data, "--output_dir", output_dir,
                                   "--num_train_epochs", "1", "--eval_strategy", "no", "--save_strategy", "no",
                                   *extra])
    plan, total = preflight(base)
    precision = plan.precision
    trainer, _, _ = build_trainer(tutor, model_args, fit_to_hardware(sft, plan), records, [],
                                  AutoTokenizer.from_pretrained(base), precision, total)
    return trainer


def run(profile: str, base: str, data: str, sequences: int) -> dict:
    from tutor_algoritmos.dataset import load_records, split_by_topic

    train_records, _ = split_by_topic(load_records(Path(data)), recipe.EVAL_FRACTION)
    records = train_records[:sequences]
    with tempfile.TemporaryDirectory(prefix="bench-") as output_dir:
        extra = PROFILES[profile][1]
        trainer = seed_trainer(base, records, output_dir) if extra is None else \
            tutor_trainer(base, data, records, output_dir, extra)
        tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {"profile": profile, "sequences": len(records), "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 2), "optimizer_steps": trainer.state.global_step,
            "first_loss": losses[0] if losses else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), required=True)
    parser.add_argument("--base", required=True, help="model folder (the demo's out/demo/base)")
    parser.add_argument("--data", default="algoritmos_fixed.jsonl")
    parser.add_argument("--sequences", type=int, default=SEQUENCES_PER_STEP,
                        help=f"lessons to train on, a multiple of {SEQUENCES_PER_STEP}")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON result goes")
    args = parser.parse_args()
    if args.sequences < 1 or args.sequences % SEQUENCES_PER_STEP:
        parser.error(f"--sequences must be a positive multiple of {SEQUENCES_PER_STEP}")
    result = run(args.profile, args.base, args.data, args.sequences)
    args.out.write_text(json.dumps(result, indent=2))
    logger.info("%s: %.1f tokens/s, peak RSS %d MB", args.profile, result["tokens_per_s"], result["peak_rss_mb"])


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
