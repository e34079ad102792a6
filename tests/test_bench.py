"""make bench's parts on the tiny model: the profiles train the same tokens and the same loss."""

from __future__ import annotations

import pytest
from conftest import ROOT

from tutor_algoritmos.bench import DOC_END, DOC_START, train_profile, update_doc
from tutor_algoritmos.errors import UserError


def test_seed_and_tutor_profiles_train_the_same_tokens_and_loss(tiny_model):
    data = str(ROOT / "algoritmos_fixed.jsonl")
    seed = train_profile("seed", str(tiny_model), data, 8)
    tutor = train_profile("tutor", str(tiny_model), data, 8)
    assert seed["tokens"] == tutor["tokens"] > 8 * 800  # 8 whole lessons, none cut
    assert seed["optimizer_steps"] == tutor["optimizer_steps"] == 1
    # LoRA B starts at zero, so the first loss is the base model's: fp32 and bf16 agree to bf16's precision
    assert abs(seed["first_loss"] - tutor["first_loss"]) < 0.02
    assert seed["tokens_per_s"] > 0 and tutor["peak_rss_mb"] > 0


def test_doc_section_is_replaced_and_the_prose_kept(tmp_path):
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text(f"# Perf\n\n{DOC_START}\nold table\n{DOC_END}\n\nprose stays\n", encoding="utf-8")
    update_doc(doc, "| new | table |\n")
    assert doc.read_text(encoding="utf-8") == f"# Perf\n\n{DOC_START}\n| new | table |\n{DOC_END}\n\nprose stays\n"
    doc.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(UserError, match="no <!-- bench:start -->"):
        update_doc(doc, "x")
