"""`make gpu-check`'s script, run in its tiny-shape CPU form: the same lines a GPU owner's run takes
(random Phi-3.5 with the real tokenizer, 16-bit LoRA with checkpointing, QLoRA, merge), proven
before any GPU sees them, and its FLOP count checked against Phi-3.5-mini's real parameters."""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import LLAMA_CPP_DIR, ROOT

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out


def test_the_flop_count_covers_exactly_the_linear_layers(phi35_config):
    from tutor_algoritmos.bench.gpu_check import linear_parameters, model_flops
    from tutor_algoritmos.hardware import parameter_count

    d, layers, vocab = phi35_config.hidden_size, phi35_config.num_hidden_layers, phi35_config.vocab_size
    embedding, norms = vocab * d, (2 * layers + 1) * d
    assert linear_parameters(phi35_config) == parameter_count(phi35_config) - embedding - norms == 3_722_379_264
    # one 1,000-token sequence: 4 N s for the matmuls, 6 L d s^2 for causal attention
    assert model_flops(phi35_config, [1000]) == 4 * 3_722_379_264 * 1000 + 6 * 32 * 3072 * 1000**2


def test_the_rehearsal_runs_on_the_cpu_with_tiny_shapes(tmp_path):
    from tutor_algoritmos.bench.gpu_check import report, run

    args = argparse.Namespace(shapes="tiny", steps=1, data=ROOT / "algoritmos_fixed.jsonl", llama_cpp_dir=LLAMA_CPP_DIR,
                              out=tmp_path)
    results = run(args)
    assert results["device"] == "cpu" and set(results["runs"]) == {"lora16", "qlora"}
    for name, entry in results["runs"].items():
        assert entry["tokens"] > 0 and entry["tokens_per_s"] > 0 and 0 < entry["mfu"] < 1, name
        assert len(entry["losses"]) == 1 and entry["peak_memory_mb"] > 0
    assert json.loads((tmp_path / "qlora" / "run_config.json").read_text())["model"]["load_in_4bit"] is True
    assert json.loads((tmp_path / "lora16" / "run_config.json").read_text())["sft"]["activation_checkpointing"] is True
    assert (tmp_path / "merged" / "config.json").is_file()
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert "lora16" in report(results) and "MFU" in report(results)
