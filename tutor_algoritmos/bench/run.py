"""make bench: training and decoding speed on the demo model, measured side by side in one run.

    python -m tutor_algoritmos.bench.run --base out/demo/base --gguf-f16 out/demo/base.gguf \\
        --gguf-q4 out/demo/base-Q4_K_M.gguf --out out/bench [--levers] [--full-size] [--doc docs/PERFORMANCE.md]

Absolute times on a shared machine are noisy; the ratios (speed-up over the plain recipe, share of
the matmul peak and of the memory bandwidth measured in the same run) are what to compare.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from tutor_algoritmos.bench.train_profile import PROFILES
from tutor_algoritmos.errors import UserError

logger = logging.getLogger("tutor")

DOC_START, DOC_END = "<!-- bench:start -->", "<!-- bench:end -->"
# Teacher-forced decode input: a Spanish lesson fed one token at a time, as generation would.
DECODE_TEXT = ("La búsqueda binaria divide el intervalo por la mitad en cada paso: si el valor buscado es "
               "menor que el del centro, seguimos por la izquierda; si es mayor, por la derecha. ") * 20


def best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: page faults, thread pool, kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak_gflops(dtype: torch.dtype, sizes=(1024, 2048, 4096), repeats: int = 3, device: str = "cpu") -> float:
    """Best square-matmul rate over a few sizes: the ceiling a training step is measured against."""
    rates = []
    for n in sizes:
        a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))

        def matmul(a=a, b=b):
            a @ b
            if device == "cuda":
                torch.cuda.synchronize()  # a CUDA launch returns before the work is done

        rates.append(2 * n**3 / best_seconds(matmul, repeats) / 1e9)
    return max(rates)


def memory_read_gbps(mib: int = 1024, repeats: int = 5) -> float:
    """Read bandwidth: summing a 1 GiB array streams it from DRAM once, like decode streams weights."""
    x = torch.ones(mib * 2**20 // 4, dtype=torch.float32)
    return x.numel() * 4 / best_seconds(x.sum, repeats) / 1e9


def gguf_weights(path: Path) -> tuple[int, dict[str, float]]:
    """Tensor bytes (what decode streams per token) and the share of weights in each ggml type, largest first."""
    from gguf import GGUFReader

    size, counts = 0, Counter()
    for tensor in GGUFReader(str(path)).tensors:
        size += int(tensor.n_bytes)
        counts[tensor.tensor_type.name] += int(tensor.n_elements)
    total = sum(counts.values())
    return size, {name: round(n / total, 3) for name, n in counts.most_common()}


def decode_tokens_per_s(path: Path, flash_attn: bool, tokens: int = 128, repeats: int = 3) -> float:
    """One token per forward pass with a growing KV cache: what each generated token costs (best of repeats)."""
    from tutor_algoritmos.gguf_tools import load_llama

    llm = load_llama(path, n_ctx=tokens + 64, n_threads=os.cpu_count(), flash_attn=flash_attn)
    ids = llm.tokenize(DECODE_TEXT.encode("utf-8"), add_bos=False)[: tokens + 1]

    def decode():
        llm.reset()  # the next eval overwrites the KV cache from position 0
        llm.eval(ids[:1])
        for token in ids[1:]:
            llm.eval([token])

    return (len(ids) - 1) / best_seconds(decode, repeats)


def decode_results(ggufs: dict[str, Path], read_gbps: float, tokens: int = 128, repeats: int = 3) -> dict:
    """Decode tokens/s with flash attention on (the default) and off, and the share of the read bandwidth."""
    decode, no_flash, model_bytes, types = {}, {}, {}, {}
    for name, path in ggufs.items():
        logger.info("decoding with %s", path)
        decode[name] = round(decode_tokens_per_s(path, flash_attn=True, tokens=tokens, repeats=repeats), 1)
        no_flash[name] = round(decode_tokens_per_s(path, flash_attn=False, tokens=tokens, repeats=repeats), 1)
        model_bytes[name], types[name] = gguf_weights(path)
    # bytes streamed per second while decoding, as a share of the measured read bandwidth
    fraction = {name: round(decode[name] * model_bytes[name] / (read_gbps * 1e9), 3) for name in decode}
    return {"decode_tokens_per_s": decode, "decode_tokens_per_s_no_flash_attn": no_flash,
            "decode_model_bytes": model_bytes, "decode_weight_types": types, "decode_bandwidth_fractions": fraction,
            "decode_bandwidth_fraction": fraction["Q4_K_M"], "decode_bandwidth_fraction_f16": fraction["f16"]}


def train_profile(profile: str, base: str, data: str, sequences: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "tutor_algoritmos.bench.train_profile", "--profile", profile, "--base", base,
                   "--data", data, "--sequences", str(sequences), "--out", str(out)]
        logger.info("training profile %s: %s", profile, PROFILES[profile][0])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode < 0:  # the kernel's OOM killer sends SIGKILL
            raise UserError(f"bench profile {profile} was killed by signal {-done.returncode}"
                            + (" (out of memory)" if done.returncode == -9 else ""))
        if done.returncode != 0:
            raise UserError(f"bench profile {profile} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor())


def machine() -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def run(args) -> dict:
    from transformers import AutoConfig

    from tutor_algoritmos.hardware import parameter_count

    results: dict = {"machine": machine()}
    logger.info("matmul peaks and memory bandwidth")
    results["matmul_peak_gflops_bf16"] = round(matmul_peak_gflops(torch.bfloat16), 1)
    results["matmul_peak_gflops_fp32"] = round(matmul_peak_gflops(torch.float32), 1)
    results["memory_read_gbps"] = round(memory_read_gbps(), 2)

    profiles = ["seed", "tutor"] + ([p for p in PROFILES if p not in ("seed", "tutor")] if args.levers else [])
    runs = {}
    for profile in profiles:
        try:
            runs[profile] = train_profile(profile, args.base, args.data, args.sequences)
        except UserError as err:
            if profile in ("seed", "tutor"):
                raise
            logger.warning("%s", err)  # a lever that cannot run here is reported, not fatal
            runs[profile] = {"error": str(err).splitlines()[-1]}
    tokens = {r["tokens"] for r in runs.values() if "tokens" in r}
    if len(tokens) != 1:
        raise UserError(f"the profiles trained on different token counts {tokens}: the comparison is void")
    seed, tutor = runs["seed"], runs["tutor"]
    parameters = parameter_count(AutoConfig.from_pretrained(args.base))
    results.update({
        "train_sequences": tutor["sequences"], "train_tokens": tutor["tokens"], "model_parameters": parameters,
        "train_tokens_per_s_seed": seed["tokens_per_s"], "train_tokens_per_s": tutor["tokens_per_s"],
        "train_speedup_vs_seed": round(tutor["tokens_per_s"] / seed["tokens_per_s"], 3),
        # LoRA on a frozen base: forward 2 FLOPs per parameter and token, backward 2 more for the
        # activation gradients (no weight gradients); attention FLOPs are not counted
        "train_peak_fraction": round(4 * parameters * tutor["tokens_per_s"] / (results["matmul_peak_gflops_bf16"]
                                                                               * 1e9), 3),
        "train_peak_rss_mb": tutor["peak_rss_mb"], "train_peak_rss_mb_seed": seed["peak_rss_mb"],
        "train_profiles": runs,
    })
    results.update(decode_results({"Q4_K_M": args.gguf_q4, "f16": args.gguf_f16}, results["memory_read_gbps"]))
    if args.full_size:
        from tutor_algoritmos.bench.full_size import build_random_phi3_ggufs
        from tutor_algoritmos.phi35 import phi35_mini_config

        ggufs = build_random_phi3_ggufs(phi35_mini_config(), Path("build/phi35-random"), args.llama_cpp_dir)
        # 4 tokens/s for the 7.6 GB f16: fewer tokens, same best-of-repeats method
        results["decode_phi35_shapes"] = decode_results(ggufs, results["memory_read_gbps"], tokens=32, repeats=2)
    return results


def table(results: dict) -> str:
    m = results["machine"]
    phi35 = results.get("decode_phi35_shapes")
    full_size = f"; Phi-3.5-mini shapes: {phi35['decode_bandwidth_fraction']}" if phi35 else ""
    rows = [
        "| key | value | goal |", "| --- | --- | --- |",
        f"| `train_tokens_per_s_seed` | {results['train_tokens_per_s_seed']} | reference |",
        f"| `train_tokens_per_s` | {results['train_tokens_per_s']} | |",
        f"| `train_speedup_vs_seed` | {results['train_speedup_vs_seed']} | >= 2.0 |",
        f"| `train_peak_fraction` | {results['train_peak_fraction']} | >= 0.25 |",
        f"| `decode_tokens_per_s` | Q4_K_M {results['decode_tokens_per_s']['Q4_K_M']}, "
        f"f16 {results['decode_tokens_per_s']['f16']} (flash attention off: Q4_K_M "
        f"{results['decode_tokens_per_s_no_flash_attn']['Q4_K_M']}, f16 "
        f"{results['decode_tokens_per_s_no_flash_attn']['f16']}) | |",
        f"| `decode_bandwidth_fraction` | {results['decode_bandwidth_fraction']} (f16: "
        f"{results['decode_bandwidth_fraction_f16']}){full_size} | >= 0.5 |",
        f"| `train_peak_rss_mb` | {results['train_peak_rss_mb']} (seed: {results['train_peak_rss_mb_seed']}) "
        "| report |",
        "", "| training profile | tokens/s | x seed | peak RSS MB | first loss |", "| --- | --- | --- | --- | --- |",
    ]
    seed = results["train_tokens_per_s_seed"]
    for name, run in results["train_profiles"].items():
        if "error" in run:
            rows.append(f"| {name}: {PROFILES[name][0]} | failed: {run['error']} | | | |")
            continue
        rows.append(f"| {name}: {PROFILES[name][0]} | {run['tokens_per_s']} | {run['tokens_per_s'] / seed:.2f} "
                    f"| {run['peak_rss_mb']} | {run['first_loss']:.4f} |")
    rows += ["", "| decoding (llama.cpp) | tokens/s | flash attention off | MB per token | share of read bandwidth "
             "| weights by type |", "| --- | --- | --- | --- | --- | --- |"]
    models = [("demo model", results)] + ([("Phi-3.5-mini shapes, random weights", phi35)] if phi35 else [])
    for model, decode in models:
        for quant, speed in decode["decode_tokens_per_s"].items():
            types = ", ".join(f"{t} {share:.0%}" for t, share in decode["decode_weight_types"][quant].items())
            rows.append(f"| {model} {quant} | {speed} | {decode['decode_tokens_per_s_no_flash_attn'][quant]} "
                        f"| {decode['decode_model_bytes'][quant] / 1e6:.1f} "
                        f"| {decode['decode_bandwidth_fractions'][quant]:.3f} | {types} |")
    rows += ["", f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), torch {m['torch']}; "
             f"bf16 matmul peak {results['matmul_peak_gflops_bf16']} GFLOP/s (fp32 "
             f"{results['matmul_peak_gflops_fp32']}), read bandwidth {results['memory_read_gbps']} GB/s; "
             f"{results['train_sequences']} lessons = {results['train_tokens']} tokens per training profile, "
             f"{results['model_parameters']:,} parameters."]
    return "\n".join(rows) + "\n"


def update_doc(doc: Path, text: str) -> None:
    """Replace the generated section of docs/PERFORMANCE.md; the prose around it stays."""
    current = doc.read_text(encoding="utf-8")
    if DOC_START not in current or DOC_END not in current:
        raise UserError(f"{doc} has no {DOC_START} ... {DOC_END} section to update")
    head, rest = current.split(DOC_START, 1)
    doc.write_text(f"{head}{DOC_START}\n{text}{DOC_END}{rest.split(DOC_END, 1)[1]}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure training and decoding speed on the demo model.")
    parser.add_argument("--base", required=True, help="Hugging Face folder of the demo model")
    parser.add_argument("--data", default="algoritmos_fixed.jsonl")
    parser.add_argument("--gguf-f16", type=Path, required=True)
    parser.add_argument("--gguf-q4", type=Path, required=True)
    parser.add_argument("--sequences", type=int, default=16,
                        help="lessons per training profile: 16 = two optimizer steps of 8, steadier than one")
    parser.add_argument("--levers", action="store_true", help="also time each speed lever on its own")
    parser.add_argument("--full-size", action="store_true",
                        help="also decode Phi-3.5-mini's shapes with random weights (builds 10 GB of GGUFs once)")
    parser.add_argument("--llama-cpp-dir", type=Path, default=Path("llama.cpp"),
                        help="llama.cpp's converter, for --full-size")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--doc", type=Path, help="rewrite this file's generated section with the table")
    args = parser.parse_args()
    for path in (args.gguf_f16, args.gguf_q4):
        if not path.is_file():
            raise UserError(f"{path} is missing — `make bench` builds it from the demo model")
    results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    (args.out / "results.md").write_text(table(results))
    if args.doc:
        update_doc(args.doc, table(results))
    print(table(results))


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
