"""The CUDA and CPU decisions as plain functions: a device description in, precision, device map,
activation checkpointing and the go/no-go out, for the machines users have."""

from __future__ import annotations

import pytest
import torch

from tutor_algoritmos.errors import UserError
from tutor_algoritmos.hardware import Device, plan_training, training_memory_gb

PHI35 = 3_821_079_552  # Phi-3.5-mini's parameters (test_bench checks the count)
DEMO = 134_515_008


def test_ampere_and_later_train_in_bf16_with_checkpointing():
    plan = plan_training(Device(cuda=True, bf16=True, compute_capability=(8, 6), free_gb=24.0), PHI35, False)
    assert (plan.precision.name, plan.precision.load_dtype, plan.device_map) == ("bf16", torch.bfloat16, {"": 0})
    assert plan.activation_checkpointing and plan.problem is None


def test_volta_and_turing_train_in_fp16():
    plan = plan_training(Device(cuda=True, bf16=False, compute_capability=(7, 5), free_gb=16.0), PHI35, False)
    assert (plan.precision.name, plan.precision.device, plan.problem) == ("fp16", "cuda", None)
    # torch's is_bf16_supported() says yes on a T4 or V100 unless asked about hardware only: the
    # compute capability decides, since emulated bf16 would run several times slower than fp16
    for capability in ((7, 0), (7, 5)):
        emulated = Device(cuda=True, bf16=True, compute_capability=capability, free_gb=16.0)
        assert plan_training(emulated, PHI35, False).precision.name == "fp16"


def test_each_process_puts_its_model_on_its_own_gpu():
    # make train NPROC=4: torchrun gives each process its LOCAL_RANK, and a 4-bit base must load there
    third = Device(cuda=True, bf16=True, compute_capability=(9, 0), free_gb=80.0, local_rank=2)
    assert plan_training(third, PHI35, True).device_map == {"": 2}


def test_too_little_memory_for_16_bit_names_qlora_when_4_bit_fits():
    small = Device(cuda=True, bf16=True, compute_capability=(8, 9), free_gb=8.0)
    assert training_memory_gb(PHI35, True) < 8.0 < training_memory_gb(PHI35, False)
    plan = plan_training(small, PHI35, load_in_4bit=False)
    assert "need ~11 GB of GPU memory and 8.0 GB are free — add --load_in_4bit (QLoRA, ~5 GB)" in plan.problem
    with pytest.raises(UserError, match="TRAIN_ARGS=--load_in_4bit"):
        plan.go()
    assert plan_training(small, PHI35, load_in_4bit=True).problem is None
    tiny = plan_training(Device(cuda=True, bf16=True, compute_capability=(8, 0), free_gb=4.0), PHI35, True)
    assert "even in 4-bit and 4.0 GB are free" in tiny.problem


def test_no_gpu_trains_small_models_on_the_cpu():
    plan = plan_training(Device(cuda=False, bf16=True), DEMO, False)
    assert (plan.precision.name, plan.device_map, plan.activation_checkpointing, plan.problem) == \
        ("bf16", {"": "cpu"}, False, None)
    assert plan_training(Device(cuda=False, bf16=False), DEMO, False).precision.name == "fp32"
    # QLoRA runs wherever bitsandbytes does, the CPU included
    assert plan_training(Device(cuda=False, bf16=True), DEMO, True).problem is None


def test_a_big_model_on_the_cpu_states_the_wait_and_can_be_allowed():
    tokens = 2_200_000  # ~567 rows x ~1,300 tokens x 3 epochs
    plan = plan_training(Device(cuda=False, bf16=True), PHI35, False, train_tokens=tokens)
    # 203.2 tokens/s x 134.5M / 3.82B = 7.15 tokens/s -> 2.2M tokens in 85.4 hours = 3.6 days
    assert "3.8B parameters on a CPU, about 3.6 days here (2,200,000 tokens to train at ~7 tokens/s" in plan.problem
    assert "--allow_cpu_training true" in plan.problem and "make demo" in plan.problem
    assert plan_training(Device(cuda=False, bf16=True), PHI35, False, tokens, allow_cpu=True).problem is None


@pytest.mark.parametrize(("flags", "plan_says", "expected"), [
    ([], False, False),                                          # the CPU plan: no recomputation
    ([], True, True),                                            # a plan that wants it (CUDA's) gets it
    (["--activation_checkpointing", "false"], True, False),      # a flag beats the plan
    (["--gradient_checkpointing", "true"], False, True),         # so does the deprecated alias
])
def test_checkpointing_follows_the_plan_unless_a_flag_chose(flags, plan_says, expected):
    # TRL defaults gradient_checkpointing to True and transformers copies it into an unset
    # activation_checkpointing: without care every CPU run recomputed its activations
    from tutor_algoritmos.hardware import Plan, Precision
    from tutor_algoritmos.train_config import fit_to_hardware, parse_train_args

    _, _, sft = parse_train_args(["--model_name_or_path", "x", *flags])
    plan = Plan(Precision("fp32", torch.float32, "cpu"), {"": "cpu"}, plan_says)
    fitted = fit_to_hardware(sft, plan)
    assert fitted.activation_checkpointing is expected and fitted.gradient_checkpointing is expected
