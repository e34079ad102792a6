"""Training configuration: dataclasses parsed by TRL's TrlParser.

Precedence: the defaults below (the documented recipe), then `--config recipe.yaml`, then flags.
Every TRL/transformers training flag (`--max_steps`, `--save_steps`, ...) is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import SFTConfig, TrlParser

from tutor_algoritmos import recipe
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.hardware import choose_precision
from tutor_algoritmos.lora_targets import DOCUMENTED_TARGETS


@dataclass
class TutorArguments:
    base_model: str = field(default=recipe.BASE_MODEL,
                            metadata={"help": "Hub id or local folder of the model to fine-tune."})
    data: str = field(default="algoritmos_fixed.jsonl", metadata={
        "help": "Training JSONL: one {instruction, output} lesson or {topic, messages} dialogue per line."})
    eval_fraction: float = field(default=recipe.EVAL_FRACTION, metadata={
        "help": "Share of examples held out for eval loss, stratified by topic."})
    lora_r: int = field(default=recipe.LORA_R, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=recipe.LORA_ALPHA, metadata={"help": "LoRA alpha (scale = alpha / r = 2)."})
    lora_dropout: float = field(default=recipe.LORA_DROPOUT, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(default=",".join(DOCUMENTED_TARGETS), metadata={
        "help": "Comma-separated projections to adapt; names are resolved against the model "
                "(Phi-3's fused qkv_proj/gate_up_proj cover q/k/v and gate/up)."})
    load_in_4bit: bool = field(default=False, metadata={
        "help": "QLoRA: load the frozen base in 4-bit NF4 (CUDA + bitsandbytes only)."})
    cpu_fast_path: bool = field(default=True, metadata={
        "help": "On a CPU: LM head on answer tokens only, bf16 LoRA inputs, 16-bit dropout masks "
                "(same loss; ~1.4x faster, see docs/PERFORMANCE.md). false = TRL + PEFT as they come."})

    @property
    def target_list(self) -> list[str]:
        return [t.strip() for t in self.lora_target_modules.split(",") if t.strip()]


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
        "help": "Longest tokenized example (prompt + answer + <|end|>); a longer one stops the run "
                "with its line number instead of being cut."})
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

    def __post_init__(self):
        # Precision follows the hardware unless a flag chose it: bf16 on CUDA with bf16 or on a CPU
        # with AVX512-BF16/AMX, fp16 on older GPUs, fp32 otherwise.
        precision = choose_precision()
        if self.bf16 is None and not self.fp16:
            self.bf16, self.fp16 = precision.bf16, precision.fp16
        if precision.device == "cpu":
            self.use_cpu = True
        if self.activation_checkpointing is None:  # a.k.a. gradient checkpointing
            self.activation_checkpointing = precision.device == "cuda"
        super().__post_init__()


def parse_train_args(argv: list[str] | None = None) -> tuple[TutorArguments, TutorSFTConfig]:
    parser = TrlParser((TutorArguments, TutorSFTConfig))
    try:
        tutor, sft = parser.parse_args_and_config(argv)
    except (ValueError, OSError) as err:
        raise UserError(f"configuration: {err}") from None
    validate(tutor, sft)
    return tutor, sft


def validate(tutor: TutorArguments, sft: TutorSFTConfig) -> None:
    problems = []
    if tutor.lora_r <= 0:
        problems.append(f"--lora_r {tutor.lora_r}: the rank must be a positive integer (recipe: 16)")
    if tutor.lora_alpha <= 0:
        problems.append(f"--lora_alpha {tutor.lora_alpha}: must be positive (recipe: 32)")
    if not 0 <= tutor.lora_dropout < 1:
        problems.append(f"--lora_dropout {tutor.lora_dropout}: must be in [0, 1)")
    if sft.learning_rate <= 0:
        problems.append(f"--learning_rate {sft.learning_rate}: must be positive (recipe: 2e-4)")
    if sft.gradient_accumulation_steps < 1:
        problems.append(f"--gradient_accumulation_steps {sft.gradient_accumulation_steps}: must be >= 1 (recipe: 8)")
    if sft.per_device_train_batch_size < 1:
        problems.append(f"--per_device_train_batch_size {sft.per_device_train_batch_size}: must be >= 1")
    if sft.max_length is None or sft.max_length < 16:
        problems.append(f"--max_length {sft.max_length}: must be a token count of at least 16 (recipe: 2048)")
    if not tutor.target_list:
        problems.append("--lora_target_modules is empty: name the projections to adapt")
    if problems:
        raise UserError("; ".join(problems))
