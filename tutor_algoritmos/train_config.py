"""Training configuration: dataclasses parsed by TRL's TrlParser, as `trl sft` parses its own.

Precedence: the defaults below (the documented recipe, from recipe.py), then `--config
recipe.yaml`, then flags. The model and LoRA flags are TRL's own ModelConfig (`--model_name_or_path`,
`--lora_r`, `--lora_alpha`, `--lora_dropout`, `--lora_target_modules`, `--load_in_4bit`), every
TRL/transformers training flag (`--max_steps`, `--save_steps`, ...) is accepted, and four are the
tutor's (`--data`, `--eval_fraction`, `--allow_cpu_training`, `--cpu_fast_path`). Parsing only reads flags: the hardware
decides precision and checkpointing later, in the preparation step (`fit_to_hardware`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from trl import ModelConfig, SFTConfig, TrlParser

from tutor_algoritmos import recipe
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.lora_targets import DOCUMENTED_TARGETS


@dataclass
class TutorArguments:
    data: str = field(default="algoritmos_fixed.jsonl", metadata={
        "help": "Training JSONL: one {instruction, output} lesson or {topic, messages} dialogue per line."})
    eval_fraction: float = field(default=recipe.EVAL_FRACTION, metadata={
        "help": "Share of examples held out for eval loss, stratified by topic."})
    allow_cpu_training: bool = field(default=False, metadata={
        "help": "Train a model over 1B parameters on a CPU anyway (a large CPU server, a wait of days "
                "accepted); without it such a run stops with the estimated time."})
    cpu_fast_path: bool = field(default=True, metadata={
        "help": "On a CPU: LM head on answer tokens only, bf16 LoRA inputs, 16-bit dropout masks "
                "(same loss; 1.63x the tokens/s side by side, see docs/PERFORMANCE.md). "
                "false = TRL + PEFT as they come."})


@dataclass
class TutorModelConfig(ModelConfig):
    """TRL's ModelConfig with the recipe's values as defaults: LoRA on every projection."""

    model_name_or_path: str | None = field(default=recipe.BASE_MODEL, metadata={
        "help": "Hub id or local folder of the model to fine-tune.", "aliases": ["--base_model"]})
    use_peft: bool = field(default=True, metadata={"help": "Train a LoRA adapter (the recipe always does)."})
    lora_r: int = field(default=recipe.LORA_R, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=recipe.LORA_ALPHA, metadata={"help": "LoRA alpha (scale = alpha / r = 2)."})
    lora_dropout: float = field(default=recipe.LORA_DROPOUT, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] | None = field(default_factory=lambda: list(DOCUMENTED_TARGETS), metadata={
        "help": "Projections to adapt; names are resolved against the model (Phi-3's fused "
                "qkv_proj/gate_up_proj cover q/k/v and gate/up)."})
    load_in_4bit: bool = field(default=False, metadata={
        "help": "QLoRA: load the frozen base in 4-bit NF4 (bitsandbytes); the adapter merges into 16-bit."})
    use_bnb_nested_quant: bool = field(default=True, metadata={
        "help": "With --load_in_4bit: quantize the quantization constants too (QLoRA's double quantization)."})
    dtype: str | None = field(default="auto", metadata={
        "help": "Dtype to load the base in; auto = the precision the hardware trains in (bf16, fp16 or fp32).",
        "choices": ["auto", "bfloat16", "float16", "float32"]})


@dataclass
class TutorSFTConfig(SFTConfig):
    """SFTConfig with the recipe's values as defaults."""

    output_dir: str = field(default="out/adapter", metadata={
        "help": "Where the finished adapter goes; checkpoints live in <output_dir>.partial/ "
                "until the run ends, and a re-run resumes from the last one."})
    learning_rate: float = field(default=recipe.LEARNING_RATE, metadata={"help": "AdamW peak learning rate."})
    num_train_epochs: float = field(default=float(recipe.EPOCHS), metadata={"help": "Passes over the train split."})
    per_device_train_batch_size: int = field(default=recipe.BATCH_SIZE, metadata={"help": "Sequences per micro-batch."})
    gradient_accumulation_steps: int = field(default=recipe.GRADIENT_ACCUMULATION, metadata={
        "help": "Micro-batches per optimizer step: 1 x 8 = 8 sequences per update."})
    seed: int = field(default=recipe.SEED, metadata={"help": "Seed for LoRA init, dropout and data order."})
    max_length: int | None = field(default=recipe.MAX_LENGTH, metadata={
        "help": "Longest tokenized example (system prompt + every turn + end of turn); a longer one stops "
                "the run with its line number instead of being cut."})
    assistant_only_loss: bool = field(default=True, metadata={
        "help": "Loss only on the tutor's turns: every answer of a dialogue and its end-of-turn token "
                "are learned; system and student tokens are masked with -100."})
    logging_steps: float = field(default=1, metadata={"help": "Log the loss every N optimizer steps."})
    eval_strategy: str = field(default="epoch", metadata={"help": "Eval loss after every epoch."})
    save_strategy: str = field(default="steps", metadata={"help": "Checkpoint every save_steps."})
    save_steps: float = field(default=10, metadata={
        "help": "Optimizer steps between checkpoints (an adapter checkpoint is small)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept."})
    report_to: str | None = field(default="none", metadata={"help": "Trackers to log to."})
    ddp_find_unused_parameters: bool | None = field(default=False, metadata={
        "help": "With NPROC > 1: every adapted projection is used in every step, so DDP need not "
                "search the graph for unused parameters each step."})
    activation_checkpointing: bool | None = field(default=None, metadata={
        "help": "Recompute activations in the backward pass (~20%% slower, far less memory). "
                "Default: on for CUDA, off on CPU, where memory is not the limit."})
    # transformers' deprecated alias of the flag above. TRL defaults it to True, and transformers copies
    # it into an unset activation_checkpointing: left at True, every CPU run would recompute its
    # activations (0.83x the speed in docs/PERFORMANCE.md) whatever the hardware plan says.
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "Deprecated alias of --activation_checkpointing."})

    def __post_init__(self):
        # Whether a flag chose the precision or checkpointing; if not, fit_to_hardware does. fp32 and
        # no checkpointing until then, so parsing never asks the hardware.
        self.precision_from_flags = self.bf16 is not None or bool(self.fp16)
        if self.bf16 is None:
            self.bf16 = False
        self.checkpointing_from_flags = self.activation_checkpointing is not None or \
            self.gradient_checkpointing is not None
        super().__post_init__()


def fit_to_hardware(sft: TutorSFTConfig, plan) -> TutorSFTConfig:
    """Precision, device and checkpointing from the hardware, where no flag chose them: bf16 on
    CUDA with bf16 or on a CPU with AVX512-BF16/AMX, fp16 on older GPUs, fp32 otherwise;
    activation checkpointing on CUDA."""
    changes = {}
    if not sft.precision_from_flags:
        changes.update(bf16=plan.precision.bf16, fp16=plan.precision.fp16)
    if plan.precision.device == "cpu":
        changes["use_cpu"] = True
    if not sft.checkpointing_from_flags:  # a.k.a. gradient checkpointing
        changes.update(activation_checkpointing=plan.activation_checkpointing,
                       gradient_checkpointing=plan.activation_checkpointing)
    fitted = dataclasses.replace(sft, **changes) if changes else sft
    fitted.precision_from_flags = fitted.checkpointing_from_flags = True
    return fitted


def parse_train_args(argv: list[str] | None = None) -> tuple[TutorArguments, TutorModelConfig, TutorSFTConfig]:
    parser = TrlParser((TutorArguments, TutorModelConfig, TutorSFTConfig))
    try:
        tutor, model, sft = parser.parse_args_and_config(argv)
    except (ValueError, OSError) as err:
        raise UserError(f"configuration: {err}") from None
    validate(model, sft)
    return tutor, model, sft


def validate(model: TutorModelConfig, sft: TutorSFTConfig) -> None:
    problems = []
    if model.lora_r <= 0:
        problems.append(f"--lora_r {model.lora_r}: the rank must be a positive integer (recipe: {recipe.LORA_R})")
    if model.lora_alpha <= 0:
        problems.append(f"--lora_alpha {model.lora_alpha}: must be positive (recipe: {recipe.LORA_ALPHA})")
    if not 0 <= model.lora_dropout < 1:
        problems.append(f"--lora_dropout {model.lora_dropout}: must be in [0, 1)")
    if sft.learning_rate <= 0:
        problems.append(f"--learning_rate {sft.learning_rate}: must be positive (recipe: {recipe.LEARNING_RATE})")
    if sft.gradient_accumulation_steps < 1:
        problems.append(f"--gradient_accumulation_steps {sft.gradient_accumulation_steps}: must be >= 1 "
                        f"(recipe: {recipe.GRADIENT_ACCUMULATION})")
    if sft.per_device_train_batch_size < 1:
        problems.append(f"--per_device_train_batch_size {sft.per_device_train_batch_size}: must be >= 1")
    if sft.max_length is None or sft.max_length < 16:
        problems.append(f"--max_length {sft.max_length}: must be a token count of at least 16 "
                        f"(recipe: {recipe.MAX_LENGTH})")
    if not model.lora_target_modules:
        problems.append("--lora_target_modules is empty: name the projections to adapt")
    if model.load_in_8bit or not model.use_peft:
        problems.append("--load_in_8bit and --use_peft false are not part of this recipe: it trains a LoRA "
                        "adapter, on a 16-bit base or a 4-bit one (--load_in_4bit)")
    if problems:
        raise UserError("; ".join(problems))
