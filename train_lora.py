"""Fine-tune a chat model into the algorithms tutor with LoRA (TRL SFTTrainer + PEFT).

    python train_lora.py                                   # the documented recipe on Phi-3.5-mini
    python train_lora.py --config recipe.yaml --max_steps 2
    python train_lora.py --model_name_or_path build/tiny-phi3 --output_dir out/adapter
    python train_lora.py --help                            # every option, no GPU or network needed
    accelerate launch --multi_gpu --num_processes 4 train_lora.py   # DDP on 4 GPUs (make train NPROC=4)

Flags are TRL's (`trl sft` users know them: --model_name_or_path, --lora_r, --lora_target_modules,
--load_in_4bit, --max_steps, ...) plus --data, --eval_fraction, --allow_cpu_training and --cpu_fast_path.
Defaults: LoRA r=16, alpha=32, dropout 0.05 on every attention and MLP projection, lr 2e-4,
3 epochs, batch 1 x gradient accumulation 8, seed 42, max_length 2048, loss on answer tokens only,
10% held out by topic. Writes <output_dir>/ (adapter, run_config.json, metrics.json,
loss_curve.png); an interrupted run resumes from <output_dir>.partial/ when re-run.
"""

from tutor_algoritmos.errors import run_cli


def main() -> None:
    from tutor_algoritmos.train_config import parse_train_args
    from tutor_algoritmos.training import train

    train(*parse_train_args())


if __name__ == "__main__":
    run_cli(main)
