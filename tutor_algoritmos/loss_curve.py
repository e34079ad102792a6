"""PNG of the training and eval loss from a Trainer's log history."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

from tutor_algoritmos.files import publish, temporary_sibling  # noqa: E402

SMOOTHING = 8  # steps averaged in the trend line: one-sequence steps are noisy (+-0.4 nats)


def plot_loss_curve(log_history: list[dict], out_png: Path, title: str,
                    held_out: dict[str, tuple[int, float]] | None = None) -> None:
    """Train loss per step (and its running mean), eval loss per epoch, and optional held-out
    points such as {"base": (0, 2.41), "tuned": (72, 2.14)} from `make eval`."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        steps, losses = zip(*train, strict=True)
        ax.plot(steps, losses, alpha=0.4 if len(train) > 2 * SMOOTHING else 1.0, label="train loss (answer tokens)")
        if len(train) > 2 * SMOOTHING:
            mean = [sum(losses[max(0, i - SMOOTHING + 1): i + 1]) / len(losses[max(0, i - SMOOTHING + 1): i + 1])
                    for i in range(len(losses))]
            ax.plot(steps, mean, label=f"train loss, mean of {SMOOTHING} steps")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss (held-out answers)")
    for name, (step, loss) in (held_out or {}).items():
        ax.plot([step], [loss], "s", markersize=8, label=f"held-out loss, {name}: {loss:.3f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = temporary_sibling(out_png)  # a reader never sees half a PNG
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    publish(tmp, out_png)
