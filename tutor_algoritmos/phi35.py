"""Phi-3.5-mini-instruct's architecture as a transformers config, with its sizes as arguments.

The fixture (a 2-layer miniature) and `make bench --full-size` (the real shapes, random weights)
both build from it, so the two stay the real model in every way but size.
"""

from __future__ import annotations

from transformers import Phi3Config

from tutor_algoritmos.phi3_tokenizer import MODEL_VOCAB_SIZE


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


def phi35_mini_config() -> Phi3Config:
    return phi3_config(hidden=3072, heads=32, layers=32, intermediate=8192)
