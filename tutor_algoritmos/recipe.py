"""The documented recipe's numbers, in one place, and the limits a run's flags set.

train_config.py takes its defaults from here, and the steps that must agree with a training run
(check-data's token limit, the benchmark's seed profile) read them from here instead of repeating
them. Light on purpose: check-data imports it without importing TRL.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

BASE_MODEL = "microsoft/Phi-3.5-mini-instruct"
LORA_R, LORA_ALPHA, LORA_DROPOUT = 16, 32, 0.05
LEARNING_RATE = 2e-4
EPOCHS = 3
BATCH_SIZE, GRADIENT_ACCUMULATION = 1, 8  # 1 x 8 = 8 sequences per optimizer step
SEED = 42
MAX_LENGTH = 2048  # tokens of the longest example: system prompt + every turn + end of turn
EVAL_FRACTION = 0.1  # share of rows held out, stratified by topic


def max_length_of(train_args: str) -> int:
    """The --max_length a run's TRAIN_ARGS set (flag, or `--config recipe.yaml`), else the recipe's."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--max_length", "--max-length", dest="max_length", type=int)  # transformers takes both
    parser.add_argument("--config", type=Path)
    known, _ = parser.parse_known_args(shlex.split(train_args))
    if known.max_length is not None:
        return known.max_length
    if known.config is not None and known.config.is_file():
        import yaml

        return int((yaml.safe_load(known.config.read_text()) or {}).get("max_length", MAX_LENGTH))
    return MAX_LENGTH
