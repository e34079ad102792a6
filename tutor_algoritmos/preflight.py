"""`make preflight`, the first step of `make all`: every check train_lora.py makes before it loads
any weights, with the run's own flags, in seconds.

    python -m tutor_algoritmos.preflight --model_name_or_path microsoft/Phi-3.5-mini-instruct
    python -m tutor_algoritmos.preflight --model_name_or_path microsoft/Phi-3.5-mini-instruct --load_in_4bit

It takes train_lora.py's flags (TRAIN_ARGS) and runs training's own preparation: the data's structure
and lengths, the base model reachable (hub, cache or folder), and the hardware plan with this run's
--load_in_4bit, --allow_cpu_training and token count, so a refusal states the estimated wait and a
flag that train would accept is accepted here too.
"""

from __future__ import annotations

import logging

from tutor_algoritmos.errors import run_cli

logger = logging.getLogger("tutor")


def main() -> None:
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import prepare

    tutor, model_args, sft = parse_train_args()
    records, _tokenizer, plan, params, _sft = prepare(tutor, model_args, sft)
    logger.info("preflight OK: %s, %s parameters, %d rows of %s, %s on %s%s", model_args.model_name_or_path,
                f"{params:,}", len(records), tutor.data, plan.precision.name, plan.precision.device,
                ", 4-bit base (QLoRA)" if model_args.load_in_4bit else "")


if __name__ == "__main__":
    run_cli(main)
