"""Decode speed on Phi-3.5-mini's own shapes: random weights at the real sizes, which is all speed depends on.

Why a second model: the demo model's hidden size (576) is not a multiple of the 256-weight K-quant
block, so llama.cpp stores most of its "Q4_K_M" as Q5_0 and Q8_0 (`make bench` shows how
much), and its layers are too small to hide ggml's per-operation thread barriers on 2 cores.
Phi-3.5-mini (hidden 3072, MLP 8192) quantizes as the name says, and is what users decode.

Built once into build/phi35-random/ (about 5 minutes on 2 cores): the HF folder (7.6 GB, removed
after conversion), f16.gguf (7.6 GB) and Q4_K_M.gguf (2.3 GB).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tutor_algoritmos.files import ensure_free_space


def build_random_phi3_ggufs(config, out: Path, llama_cpp_dir: Path) -> dict[str, Path]:
    """f16 and Q4_K_M GGUFs of a random Phi-3 with `config`'s shapes; kept and reused once built."""
    from tutor_algoritmos.conversion import convert_to_gguf, quantize_gguf
    from tutor_algoritmos.fixtures.tiny_phi3 import save_random_phi3
    from tutor_algoritmos.hardware import parameter_count
    from tutor_algoritmos.llama_cpp_source import ensure_llama_cpp

    ggufs = {"f16": out / "f16.gguf", "Q4_K_M": out / "Q4_K_M.gguf"}
    out.mkdir(parents=True, exist_ok=True)
    if not ggufs["f16"].is_file():
        hf = out / "hf.tmp"
        shutil.rmtree(hf, ignore_errors=True)
        ensure_free_space(out, 2 * 2 * parameter_count(config), "the random Phi-3 folder and its f16 GGUF")
        ensure_llama_cpp(llama_cpp_dir)
        try:
            save_random_phi3(config, llama_cpp_dir / "models" / "ggml-vocab-phi-3.gguf", hf)
            convert_to_gguf(hf, ggufs["f16"], "f16", llama_cpp_dir, "phi-3.5-mini shapes, random weights")
        finally:
            shutil.rmtree(hf, ignore_errors=True)
    if not ggufs["Q4_K_M"].is_file():
        quantize_gguf(ggufs["f16"], ggufs["Q4_K_M"], "Q4_K_M")
    return ggufs
