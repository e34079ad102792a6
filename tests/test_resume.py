"""A training run killed after a checkpoint resumes from it and ends with the same adapter layout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_run_resumes_from_the_last_checkpoint(tiny_model, tmp_path, sig):
    data = tmp_path / "d.jsonl"
    rows = [{"instruction": f"[T{i % 2}] - ¿Pregunta {i}?", "output": f"Respuesta {i}. " * 30} for i in range(24)]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "adapter"
    cmd = [sys.executable, "train_lora.py", "--model_name_or_path", str(tiny_model), "--data", str(data),
           "--output_dir", str(out), "--max_steps", "40", "--save_steps", "2", "--gradient_accumulation_steps", "1",
           "--eval_strategy", "no"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "adapter.partial"
    deadline = time.time() + 300
    while not (partial / "checkpoint-4").is_dir() and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    first.send_signal(sig)
    assert first.wait(timeout=120) in (-signal.SIGKILL, 130)  # Ctrl-C: the CLI's "interrumpido" exit
    assert not out.exists()  # a killed run leaves no adapter that make could take for finished
    checkpoints = sorted(p.name for p in partial.glob("checkpoint-*"))
    assert checkpoints, "no checkpoint before the kill"

    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resuming from {partial}/checkpoint-" in second.stderr
    assert (out / "adapter_model.safetensors").is_file() and not partial.exists()
    assert json.loads((out / "metrics.json").read_text())["trainable_parameters"] == 28_672
    assert max(e["step"] for e in json.loads((out / "log_history.json").read_text())) == 40


def test_checkpoints_of_another_recipe_are_not_resumed(tiny_model, tmp_path):
    from tutor_algoritmos.errors import UserError
    from tutor_algoritmos.training import last_checkpoint

    partial = tmp_path / "adapter.partial"
    (partial / "checkpoint-2").mkdir(parents=True)
    (partial / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (partial / "run_fingerprint.json").write_text(json.dumps({"lora_r": 8}))
    try:
        last_checkpoint(partial, {"lora_r": 16})
    except UserError as err:
        assert "changed: lora_r" in str(err) and f"rm -rf {partial}" in str(err)
    else:
        raise AssertionError("a checkpoint of r=8 was accepted for r=16")


def test_a_checkpoint_cut_off_mid_save_is_skipped(tmp_path):
    from tutor_algoritmos.training import last_checkpoint

    partial = tmp_path / "adapter.partial"
    for step in (2, 4):
        (partial / f"checkpoint-{step}").mkdir(parents=True)
    (partial / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (partial / "run_fingerprint.json").write_text(json.dumps({"lora_r": 16}))
    assert last_checkpoint(partial, {"lora_r": 16}) == str(partial / "checkpoint-2")
    assert not (partial / "checkpoint-4").exists()
