"""Resolve the documented LoRA targets against a model's real modules and prove the coverage.

The recipe says "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj": every attention and
MLP projection. Phi-3 fuses them (`qkv_proj` = q|k|v, `gate_up_proj` = gate|up), so the literal
list matches only `o_proj` and `down_proj` there, and PEFT says nothing about a partial match.
"""

from __future__ import annotations

from torch import nn

from tutor_algoritmos.errors import UserError

DOCUMENTED_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Fused module name -> the split projections it computes.
FUSED = {
    "qkv_proj": {"q_proj", "k_proj", "v_proj"},  # Phi-3
    "gate_up_proj": {"gate_proj", "up_proj"},  # Phi-3
    "query_key_value": {"q_proj", "k_proj", "v_proj"},  # Falcon, GPT-NeoX
}


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated transformer blocks: the longest nn.ModuleList in the model."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise UserError(f"{type(model).__name__} has no list of decoder layers to adapt")
    return list(max(lists, key=len))


def projection_names(layer: nn.Module) -> dict[str, nn.Module]:
    """Leaf name -> module for every linear projection in one decoder layer."""
    return {name.rsplit(".", 1)[-1]: module for name, module in layer.named_modules()
            if isinstance(module, nn.Linear) or hasattr(module, "base_layer")}


def resolve_targets(model: nn.Module, wanted: list[str]) -> list[str]:
    """Map the wanted projection names onto the module names this model really has."""
    available = projection_names(decoder_layers(model)[0])
    resolved, covered = [], set()
    for name in sorted(available):
        parts = FUSED.get(name, {name})
        if parts & set(wanted):
            resolved.append(name)
            covered |= parts & set(wanted)
    unmatched = [w for w in wanted if w not in covered]
    if unmatched:
        raise UserError(
            f"LoRA targets {', '.join(unmatched)} match no module of {type(model).__name__}; "
            f"its layer projections are {', '.join(sorted(available))} — pass names from that list "
            f"with --lora_target_modules")
    return resolved


def check_coverage(model: nn.Module, resolved: list[str]) -> None:
    """After PEFT wrapping, every decoder layer must carry an adapter on every resolved module."""
    missing = []
    for index, layer in enumerate(decoder_layers(model)):
        projections = projection_names(layer)
        for name in resolved:
            if not hasattr(projections.get(name), "lora_A"):
                missing.append(f"layer {index} {name}")
    if missing:
        raise UserError(f"LoRA adapters missing on {', '.join(missing[:8])}"
                        f"{' …' if len(missing) > 8 else ''}; targets matched: {', '.join(resolved)}")


def phi3_lora_parameter_count(config, rank: int) -> int:
    """Trainable parameters of rank-`rank` LoRA on Phi-3's four fused projections per layer.

    Each adapted Linear(in, out) adds A (rank x in) and B (out x rank): rank * (in + out).
    Phi-3.5-mini (hidden 3072, 32 heads of 96, MLP 8192, 32 layers) at r=16:
    qkv 16*(3072+9216) + o 16*(3072+3072) + gate_up 16*(3072+16384) + down 16*(8192+3072)
    = 786,432 per layer, x 32 layers = 25,165,824.
    """
    hidden, inter = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    kv_heads = config.num_key_value_heads or config.num_attention_heads
    q_out, kv_out = config.num_attention_heads * head_dim, kv_heads * head_dim
    per_layer = rank * ((hidden + q_out + 2 * kv_out)  # qkv_proj: one A for q, k and v together
                        + (q_out + hidden)  # o_proj
                        + (hidden + 2 * inter)  # gate_up_proj: one A for gate and up
                        + (inter + hidden))  # down_proj
    return per_layer * config.num_hidden_layers
