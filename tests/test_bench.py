"""make bench's parts on the tiny model: the profiles train the same tokens and the same loss."""

from __future__ import annotations

import pytest
from conftest import ROOT

from tutor_algoritmos.bench.run import DOC_END, DOC_START, train_profile, update_doc
from tutor_algoritmos.errors import UserError

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out


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


def test_random_phi3_ggufs_decode_and_report_their_weight_types(tmp_path):
    from conftest import LLAMA_CPP_DIR

    from tutor_algoritmos.bench.full_size import build_random_phi3_ggufs
    from tutor_algoritmos.bench.run import decode_results, gguf_weights
    from tutor_algoritmos.fixtures.tiny_phi3 import tiny_phi3_config
    from tutor_algoritmos.hardware import parameter_count
    from tutor_algoritmos.phi35 import phi35_mini_config

    assert parameter_count(phi35_mini_config()) == 3_821_079_552  # Phi-3.5-mini's published 3.8B
    ggufs = build_random_phi3_ggufs(tiny_phi3_config(), tmp_path, LLAMA_CPP_DIR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Q4_K_M.gguf", "f16.gguf"]  # the HF folder is gone
    # hidden 64 is not a multiple of the 256-weight K-quant block: llama.cpp falls back to other types,
    # which is what happens to the demo model's 576 and never to Phi-3.5-mini's 3072
    size, shares = gguf_weights(ggufs["Q4_K_M"])
    assert "Q4_K" not in shares and abs(sum(shares.values()) - 1) < 0.01
    assert gguf_weights(ggufs["f16"])[1]["F16"] > 0.99
    decode = decode_results(ggufs, read_gbps=10.0, tokens=8, repeats=1)
    assert decode["decode_tokens_per_s"]["Q4_K_M"] > 0 and decode["decode_tokens_per_s_no_flash_attn"]["f16"] > 0
    assert decode["decode_model_bytes"]["Q4_K_M"] == size
    q4 = decode["decode_tokens_per_s"]["Q4_K_M"] * size / 10e9
    assert decode["decode_bandwidth_fraction"] == decode["decode_bandwidth_fractions"]["Q4_K_M"] == round(q4, 3)
