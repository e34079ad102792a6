"""`make train NPROC=2`: two DDP processes (gloo on the CPU) under accelerate launch, one adapter."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import LLAMA_CPP_DIR, ROOT

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_adapter(tiny_model, tmp_path):
    result = subprocess.run(
        ["make", "train", "NPROC=2", f"ACCELERATE_ARGS=--main_process_port {free_port()}",
         f"PYTHON={sys.executable}", "BASE_MODEL=build/tiny-phi3", f"OUT={tmp_path}", f"LLAMA_CPP_DIR={LLAMA_CPP_DIR}",
         "TRAIN_ARGS=--max_steps 2 --gradient_accumulation_steps 2 --eval_strategy no"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "accelerate.commands.launch --multi_gpu --num_processes 2" in result.stdout
    for rank in (0, 1):
        assert f"rank {rank} of 2 (gloo): 2 optimizer steps done" in log
    assert "4 sequences per optimizer step = 2 process(es) x 1 per micro-batch x 2 accumulated" in log
    assert log.count("adapter saved to") == 1
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "metrics.json").read_text())["processes"] == 2
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["adapter"]
