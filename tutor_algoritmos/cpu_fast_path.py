"""How a LoRA step is computed on a CPU: the same loss and recipe, less wasted work.

Measured on SmolLM2-135M, 2 cores, bf16 (tokens/s of a 4-sequence step, side by side; make bench
keeps the current figures): TRL + PEFT as they come 109 -> answer-only LM head 127 -> no fp32
round-trip of the LoRA input 138 -> cheaper dropout masks 156. Each piece below says where its
time went. On CUDA none of this applies: TRL's Triton kernel and PEFT's dropout are already fast.
"""

from __future__ import annotations

import logging

import torch
from trl import SFTTrainer

from tutor_algoritmos.answer_loss import answer_token_loss

logger = logging.getLogger("tutor")

# 16 random bits per element: one 64-bit draw of torch's CPU generator (Mersenne twister) feeds
# four elements. nn.Dropout draws one 32-bit number per element; on a 1153 x 576 bf16 activation
# that costs 3.5 ms, more than the 576 x 576 projection it feeds (2.0 ms); this mask costs 1.2 ms.
_LEVELS = 1 << 16


class FastDropout(torch.nn.Module):
    """Inverted dropout whose drop probability is p rounded to a multiple of 1/65536.

    For the recipe's 0.05 that is 3277/65536 = 0.0500031; kept values are scaled by 1/(1 - p) of
    that exact probability, so the expected activation is unchanged, as with nn.Dropout.
    """

    def __init__(self, p: float):
        super().__init__()
        self.dropped_levels = round(p * _LEVELS)
        self.p = self.dropped_levels / _LEVELS
        self.scale = 1.0 / (1.0 - self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropped_levels == 0:
            return x
        words = (x.numel() + 3) // 4
        bits = torch.empty(words, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
        # int16 lanes are uniform on [-32768, 32767]: the lowest `dropped_levels` values drop
        keep = bits.view(torch.int16)[: x.numel()].view(x.shape) >= self.dropped_levels - _LEVELS // 2
        return torch.where(keep, x * self.scale, 0)

    def extra_repr(self) -> str:
        return f"p={self.p:.7f}"


def speed_up_lora_on_cpu(model: torch.nn.Module, bf16: bool) -> int:
    """Swap every LoRA dropout for FastDropout; under bf16, keep the LoRA input in bf16.

    PEFT casts each LoRA input to the adapter's fp32 dtype (a copy of every activation, 7 per
    layer) and autocast casts it straight back to bf16 for the matmul: ~9% of a step. Returns how
    many dropout modules were replaced.
    """
    replaced = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, torch.nn.ModuleDict):
            continue
        if bf16:
            module.cast_input_dtype_enabled = False
        for name, dropout in dropouts.items():
            if isinstance(dropout, torch.nn.Dropout):
                dropouts[name] = FastDropout(dropout.p)
                replaced += 1
    return replaced


class TutorSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss skips the prompt positions on devices without Triton (CPUs)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        device = next(model.parameters()).device
        if device.type in ("cuda", "xpu") or return_outputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, counts = answer_token_loss(model, inputs, num_items_in_batch)
        # Trainer scales a DDP loss by the world size when it leaves the averaging to the loss
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        mode = "train" if model.training else "eval"
        labelled = max(counts["labelled"], 1)
        self._metrics[mode]["mean_token_accuracy"].append(counts["correct"].item() / labelled)
        if mode == "train":
            self._total_train_tokens += int(inputs["attention_mask"].sum()) if "attention_mask" in inputs \
                else inputs["input_ids"].numel()
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss
