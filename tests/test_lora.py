"""LoRA targets resolve to Phi-3's fused projections and cover every layer; the count formula."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_base(tiny_model):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)


def test_documented_names_resolve_to_fused_modules(tiny_base):
    from tutor_algoritmos.lora_targets import DOCUMENTED_TARGETS, resolve_targets

    resolved = resolve_targets(tiny_base, list(DOCUMENTED_TARGETS))
    assert resolved == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"]
    assert resolve_targets(tiny_base, ["q_proj"]) == ["qkv_proj"]


def test_literal_documented_list_misses_the_fused_modules_and_coverage_catches_it(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tutor_algoritmos.errors import UserError
    from tutor_algoritmos.lora_targets import DOCUMENTED_TARGETS, check_coverage

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules=list(DOCUMENTED_TARGETS)))
    wrapped = sorted({n.rsplit(".", 2)[-2] for n, _ in model.named_modules() if n.endswith(".lora_A")})
    assert wrapped == ["down_proj", "o_proj"]  # PEFT accepts the partial match silently
    with pytest.raises(UserError, match="layer 0 gate_up_proj"):
        check_coverage(model, ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"])


def test_unknown_target_names_the_available_modules(tiny_base):
    from tutor_algoritmos.errors import UserError
    from tutor_algoritmos.lora_targets import resolve_targets

    with pytest.raises(UserError, match="c_attn match no module.*gate_up_proj"):
        resolve_targets(tiny_base, ["c_attn"])


def test_parameter_count_formula(phi35_config, tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from tutor_algoritmos.lora_targets import phi3_lora_parameter_count

    assert phi3_lora_parameter_count(phi35_config, 16) == 25_165_824
    config = AutoConfig.from_pretrained(tiny_model)
    fused = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=16, lora_alpha=32, target_modules=fused))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # 2 layers x r=16 x (in + out) of qkv 64->192, o 64->64, gate_up 64->256, down 128->64
    assert trainable == phi3_lora_parameter_count(config, 16) == 2 * 16 * (256 + 128 + 320 + 192)
