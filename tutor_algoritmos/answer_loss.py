"""The loss the tutor is trained and evaluated on: cross-entropy over the labelled (tutor) tokens.

Training's CPU fast path (cpu_fast_path.py) and `make eval`'s held-out loss (evaluation.py) both
compute it here, so the number eval reports is the one training minimised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def answer_token_loss(model, inputs: dict, num_items_in_batch=None) -> tuple[torch.Tensor, dict]:
    """Mean next-token cross-entropy over the labelled (answer) tokens, summed in fp32.

    Only positions whose next token is labelled go through the LM head (transformers'
    `logits_to_keep` with a boolean mask): a lesson's prompt is ~15% of its tokens and never
    needs logits. TRL's chunked head scores every position on a CPU, recomputes the logits in
    the backward pass and adds entropy: 2.7 s of a 9 s step for one 1,150-token lesson.
    """
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    targets_at = labels[:, 1:]  # position t predicts token t + 1
    keep = F.pad(targets_at != -100, (0, 1), value=False)
    outputs = model(**inputs, use_cache=False, logits_to_keep=keep)
    targets = targets_at[targets_at != -100]
    logits = outputs.logits.float()  # (labelled tokens, vocab)
    count = targets.numel() if num_items_in_batch is None else num_items_in_batch
    loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(count).clamp(min=1)
    with torch.no_grad():
        correct = (logits.argmax(-1) == targets).sum()
    return loss, {"correct": correct, "labelled": targets.numel()}
