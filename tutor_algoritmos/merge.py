"""Fold a LoRA adapter into its base model and save a folder llama.cpp can convert."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import ensure_free_space, publish, temporary_sibling

logger = logging.getLogger("tutor")

# Every tokenizer file a converter or a later `from_pretrained` may read. transformers 5's
# `save_pretrained` writes no sentencepiece `tokenizer.model`, which the phi3 converter requires,
# so the base's own files are copied verbatim instead of re-saved.
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json", "chat_template.jinja")


def read_adapter_config(adapter: Path) -> dict:
    config = adapter / "adapter_config.json"
    if not config.is_file():
        raise UserError(f"{adapter} has no adapter_config.json — train first (`make train`)")
    return json.loads(config.read_text())


def check_adapter_matches_base(adapter_config: dict, base: str, adapter: Path) -> None:
    trained_on = adapter_config.get("base_model_name_or_path")
    if trained_on and trained_on != base and Path(trained_on).resolve() != Path(base).resolve():
        raise UserError(f"{adapter} was trained on {trained_on}, not {base} — merge with "
                        f"BASE_MODEL={trained_on}, or retrain for {base}")


def base_tokenizer_files(base: str) -> dict[str, Path]:
    """name -> local path of the base's tokenizer files (from the folder or the hub cache)."""
    if Path(base).is_dir():
        return {n: Path(base) / n for n in TOKENIZER_FILES if (Path(base) / n).is_file()}
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(base, allow_patterns=list(TOKENIZER_FILES)))
    return {n: folder / n for n in TOKENIZER_FILES if (folder / n).is_file()}


def sixteen_bit_dtype(config) -> torch.dtype:
    """The base's own 16-bit type (Phi-3.5: bf16); fp32 checkpoints are merged in bf16."""
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return torch.float16 if dtype in (torch.float16, "float16") else torch.bfloat16


def merge(base: str, adapter: Path, out: Path) -> Path:
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    adapter_config = read_adapter_config(adapter)
    check_adapter_matches_base(adapter_config, base, adapter)
    config = AutoConfig.from_pretrained(base, trust_remote_code=False)
    dtype = sixteen_bit_dtype(config)
    tokenizer_files = base_tokenizer_files(base)
    if "tokenizer.model" not in tokenizer_files and config.model_type == "phi3":
        raise UserError(f"{base} has no tokenizer.model, which llama.cpp's phi3 converter needs")

    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, trust_remote_code=False)
    n_params = sum(p.numel() for p in model.parameters())
    ensure_free_space(out.parent, n_params * dtype.itemsize, "the merged model")
    peft_model = PeftModel.from_pretrained(model, str(adapter))
    adapted = {name.removesuffix(".base_layer"): module.weight.detach().clone()
               for name, module in peft_model.named_modules() if name.endswith(".base_layer")}
    merged = peft_model.merge_and_unload()
    unchanged = [name for name, before in adapted.items()
                 if torch.equal(merged.get_submodule(name.split("base_model.model.", 1)[-1]).weight, before)]
    if unchanged:
        raise UserError(f"merging left {len(unchanged)} of {len(adapted)} adapted weights unchanged "
                        f"(e.g. {unchanged[0]}) — the adapter is untrained (LoRA B = 0); train longer")
    logger.info("merged LoRA into %d modules of %s (%s)", len(adapted), base, dtype)

    tmp = temporary_sibling(out)
    merged.save_pretrained(tmp)
    for name, path in tokenizer_files.items():
        shutil.copy2(path, tmp / name)
    publish(tmp, out)
    return out
