"""Build `build/tiny-phi3/`: Phi-3.5-mini-instruct in miniature, for offline tests.

Same architecture class, fused `qkv_proj`/`gate_up_proj`, 32,064-row vocabulary, LongRoPE with
short/long factors and the real tokenizer (rebuilt from llama.cpp's phi-3 vocabulary); only the
sizes shrink (2 layers, hidden 64), so every code path of the 3.8B model runs in seconds on a CPU.

    python -m tutor_algoritmos.tiny_phi3 --vocab-gguf llama.cpp/models/ggml-vocab-phi-3.gguf \
        --out build/tiny-phi3
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from transformers import GenerationConfig, Phi3Config, Phi3ForCausalLM

from tutor_algoritmos.phi3_tokenizer import MODEL_VOCAB_SIZE, write_phi3_tokenizer

HIDDEN, HEADS, LAYERS, INTERMEDIATE = 64, 4, 2, 128


def phi3_config(hidden: int, heads: int, layers: int, intermediate: int) -> Phi3Config:
    """Phi-3.5-mini-instruct's config.json with its sizes as arguments (the real ones: 3072, 32, 32, 8192)."""
    rotary_pairs = hidden // heads // 2  # LongRoPE needs one factor per rotary pair
    return Phi3Config(
        vocab_size=MODEL_VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        # Phi-3.5: 128k positions by LongRoPE over a 4k original window.
        max_position_embeddings=131072,
        original_max_position_embeddings=4096,
        rope_parameters={
            "rope_type": "longrope",
            "rope_theta": 10000.0,
            "short_factor": [1.0 + 0.05 * i for i in range(rotary_pairs)],
            "long_factor": [1.0 + 0.5 * i for i in range(rotary_pairs)],
        },
        sliding_window=262144,
        bos_token_id=1,
        eos_token_id=32000,
        pad_token_id=32000,
        tie_word_embeddings=False,
    )


def tiny_phi3_config() -> Phi3Config:
    return phi3_config(HIDDEN, HEADS, LAYERS, INTERMEDIATE)


def phi35_mini_config() -> Phi3Config:
    return phi3_config(hidden=3072, heads=32, layers=32, intermediate=8192)


def save_random_phi3(config: Phi3Config, vocab_gguf: Path, folder: Path, seed: int = 0) -> None:
    """A randomly initialised Phi3ForCausalLM in bf16 (as Phi-3.5 ships) with the real tokenizer."""
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 directly: the 3.8B shapes need 7.6 GB, not 15
    try:
        model = Phi3ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=[32007, 32001, 32000],
                                               pad_token_id=32000)
    model.save_pretrained(folder)
    write_phi3_tokenizer(vocab_gguf, folder)


def build(vocab_gguf: Path, out: Path, seed: int = 0) -> None:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_random_phi3(tiny_phi3_config(), vocab_gguf, tmp, seed)
    (tmp / "README.md").write_text(json.dumps({"fixture": "tiny-phi3", "seed": seed}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-gguf", type=Path, required=True,
                        help="llama.cpp's models/ggml-vocab-phi-3.gguf")
    parser.add_argument("--out", type=Path, default=Path("build/tiny-phi3"))
    args = parser.parse_args()
    build(args.vocab_gguf, args.out)
    print(f"tiny Phi-3.5 fixture written to {args.out}")


if __name__ == "__main__":
    main()
