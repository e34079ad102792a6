"""`make gpu-check`: the full-size rehearsal a GPU owner runs before `make all`, in minutes, without the hub.

    python -m tutor_algoritmos.bench.gpu_check                     # Phi-3.5-mini's shapes, on CUDA
    python -m tutor_algoritmos.bench.gpu_check --shapes tiny       # the same script on any CPU (the tests)

It builds Phi-3.5-mini's exact architecture with random weights, in bf16 on the device, with the
real tokenizer (rebuilt from llama.cpp's vocabulary); trains a few optimizer steps of the recipe on
the shipped data at max_length 2048, first 16-bit LoRA with activation checkpointing, then QLoRA;
and merges the full-size adapter. Random weights make the loss meaningless; what it proves is that
every line of the GPU path runs, and what it measures is speed and memory. Per run: tokens/s, model
FLOP utilisation (MFU) against the device's bf16 matmul peak measured in the same run, peak memory.

MFU counts model FLOPs only (activation checkpointing's recomputation is not useful work):
per sequence of s tokens, 4·N·s for the matmuls of the N linear-layer parameters (forward 2·N·s;
backward 2·N·s for the activation gradients, the frozen base gets no weight gradients and LoRA's
are < 1%) plus 6·L·d·s² for causal attention (forward QKᵀ and AV, 2·d per pair of tokens each,
over s²/2 pairs and L layers, then twice that backward).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
from pathlib import Path

import torch

from tutor_algoritmos import recipe
from tutor_algoritmos.errors import UserError

logger = logging.getLogger("tutor")

PROFILES = {  # name -> extra train_lora.py flags
    "lora16": ["--activation_checkpointing", "true"],
    "qlora": ["--activation_checkpointing", "true", "--load_in_4bit", "true"],
}


def matmul_peak_tflops(device: str, n: int, repeats: int = 5) -> float:
    """Best rate of an n x n bf16 matmul on the device: the ceiling MFU is measured against."""
    from tutor_algoritmos.bench.run import matmul_peak_gflops

    return matmul_peak_gflops(torch.bfloat16, (n,), repeats, device) / 1000


def linear_parameters(config) -> int:
    """N: weights of every linear layer, the LM head included (the embedding lookup is no matmul)."""
    d, inter, layers, vocab = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    return layers * (d * 3 * d + d * d + d * 2 * inter + inter * d) + d * vocab  # qkv, o, gate_up, down; head


def model_flops(config, lengths: list[int]) -> float:
    n, d, layers = linear_parameters(config), config.hidden_size, config.num_hidden_layers
    return sum(4 * n * s + 6 * layers * d * s * s for s in lengths)


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak so far


def run(args) -> dict:
    from transformers import AutoTokenizer

    from tutor_algoritmos.dataset import load_records, token_lengths
    from tutor_algoritmos.fixtures.tiny_phi3 import save_random_phi3, tiny_phi3_config
    from tutor_algoritmos.merge import merge
    from tutor_algoritmos.phi35 import phi35_mini_config
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import train

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.shapes == "full" and device != "cuda":
        raise UserError("gpu-check at Phi-3.5-mini's size needs a CUDA GPU — `--shapes tiny` runs the same "
                        "script on this CPU")
    config = phi35_mini_config() if args.shapes == "full" else tiny_phi3_config()
    base = args.out / "base"
    logger.info("building Phi-3.5 (%s shapes) with random weights on %s", args.shapes, device)
    save_random_phi3(config, args.llama_cpp_dir / "models" / "ggml-vocab-phi-3.gguf", base, device=device)
    peak = matmul_peak_tflops(device, 8192 if device == "cuda" else 1024)
    lengths = token_lengths(load_records(args.data), AutoTokenizer.from_pretrained(base))
    mean_flops_per_token = model_flops(config, lengths) / sum(lengths)
    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "shapes": args.shapes,
               "parameters_linear": linear_parameters(config), "bf16_matmul_peak_tflops": round(peak, 2),
               "model_flops_per_token": round(mean_flops_per_token), "runs": {}}
    for profile, extra in PROFILES.items():
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        out = args.out / profile
        flags = ["--model_name_or_path", str(base), "--data", str(args.data), "--output_dir", str(out),
                 "--max_steps", str(args.steps), "--eval_fraction", "0", "--eval_strategy", "no",
                 "--save_strategy", "no", "--max_length", str(recipe.MAX_LENGTH), *extra]
        logger.info("%s: %d optimizer steps of the recipe", profile, args.steps)
        train(*parse_train_args(flags))
        log = json.loads((out / "log_history.json").read_text())
        tokens = max(e.get("num_tokens", 0) for e in log)
        seconds = next(e["train_runtime"] for e in log if "train_runtime" in e)
        results["runs"][profile] = {
            "tokens": int(tokens), "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
            "mfu": round(tokens * mean_flops_per_token / seconds / (peak * 1e12), 4),
            "peak_memory_mb": round(peak_memory_mb(device)), "losses": [e["loss"] for e in log if "loss" in e]}
    merged = merge(str(base), args.out / "lora16", args.out / "merged")
    results["merged"] = str(merged)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def report(results: dict) -> str:
    lines = [f"gpu-check on {results['device']} ({results['shapes']} shapes): bf16 matmul peak "
             f"{results['bf16_matmul_peak_tflops']} TFLOP/s, "
             f"{results['model_flops_per_token']:,} model FLOPs per token",
             f"{'run':8} {'tokens/s':>10} {'MFU':>7} {'peak memory MB':>15}"]
    for name, run_ in results["runs"].items():
        lines.append(f"{name:8} {run_['tokens_per_s']:>10} {run_['mfu']:>7.1%} {run_['peak_memory_mb']:>15,}")
    lines.append(f"merged adapter: {results['merged']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", choices=["full", "tiny"], default="full")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run (8 sequences each)")
    parser.add_argument("--data", type=Path, default=Path("algoritmos_fixed.jsonl"))
    parser.add_argument("--llama-cpp-dir", type=Path, default=Path("llama.cpp"))
    parser.add_argument("--out", type=Path, default=Path("out/gpu-check"))
    args = parser.parse_args()
    print(report(run(args)))


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
