"""Merged Hugging Face folder -> GGUF (llama.cpp's converter) -> quantized GGUF, each checked."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from tutor_algoritmos.chat_formats import detect_chat_format
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import ensure_free_space, folder_size, publish, temporary_sibling
from tutor_algoritmos.gguf_tools import BITS_PER_WEIGHT, OUTTYPES, QUANT_TYPES, check_gguf, quantize, read_gguf_info
from tutor_algoritmos.llama_cpp_source import ensure_llama_cpp

logger = logging.getLogger("tutor")

BYTES_PER_WEIGHT = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 8.5 / 8}


def gguf_model_name(merged: Path, name: str) -> str:
    """general.name for the GGUF; for Phi-3 it must contain "phi-3" (see chat_formats.PHI3)."""
    config = json.loads((merged / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = config.get("chat_template")
    jinja = merged / "chat_template.jinja"
    if not template and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    marker = detect_chat_format(template).gguf_name_must_contain
    return name if marker in name.lower() else f"{name} ({marker})" if marker else name


def local_model_folder(model: Path) -> Path:
    """A folder as is; a hub id (e.g. the base model, for `make eval`) from the local HF cache/hub."""
    if model.is_dir() or str(model).count("/") != 1:
        return model
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(model), allow_patterns=["*.json", "*.safetensors", "*.model", "*.jinja"]))


def convert_to_gguf(merged: Path, outfile: Path, outtype: str, llama_cpp_dir: Path, name: str,
                    dry_run: bool = False) -> Path:
    """dry_run: every check on the inputs (folder, tokenizer, chat format, free space), nothing written."""
    if outtype not in OUTTYPES:
        raise UserError(f"unknown OUTTYPE {outtype!r} — choose one of {', '.join(OUTTYPES)}")
    merged = local_model_folder(merged)
    if not (merged / "config.json").is_file():
        raise UserError(f"{merged} is not a model folder — run `make merge` first")
    model_type = json.loads((merged / "config.json").read_text())["model_type"]
    if model_type == "phi3" and not (merged / "tokenizer.model").is_file():
        raise UserError(f"{merged} has no tokenizer.model, which llama.cpp's phi3 converter needs — "
                        "re-run `make merge`, which copies it from the base model")
    model_name = gguf_model_name(merged, name)
    params = folder_size(merged) / 2  # merged weights are 16-bit
    ensure_free_space(outfile.parent, int(params * BYTES_PER_WEIGHT[outtype]), f"the {outtype} GGUF")
    if dry_run:
        present = (llama_cpp_dir / "convert_hf_to_gguf.py").is_file()
        logger.info("dry run: %s (%s) would convert to %s as %s, general.name %r; llama.cpp %s", merged,
                    model_type, outfile, outtype, model_name,
                    f"found in {llama_cpp_dir}" if present else f"would be fetched into {llama_cpp_dir}")
        return outfile
    converter = ensure_llama_cpp(llama_cpp_dir)
    tmp = temporary_sibling(outfile)
    cmd = [sys.executable, str(converter), str(merged), "--outtype", outtype, "--outfile", str(tmp),
           "--model-name", model_name]
    logger.info("converting %s -> %s (%s, general.name %r)", merged, outfile, outtype, model_name)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise UserError(f"llama.cpp's converter failed on {merged}:\n{tail}")
    check_gguf(tmp, expected_architecture=model_type)
    publish(tmp, outfile)
    return outfile


def quantize_gguf(src: Path, outfile: Path, quant: str, dry_run: bool = False) -> Path:
    """dry_run: the source must be a readable GGUF, the type known and the disk big enough; nothing written."""
    if not src.is_file():
        raise UserError(f"{src} does not exist — run `make gguf` first")
    if quant not in QUANT_TYPES:
        raise UserError(f"unknown QUANT {quant!r} — choose one of {', '.join(QUANT_TYPES)}")
    read_gguf_info(src)  # a truncated or foreign file stops here, in plain words
    # the source is 16-bit: bytes / 2 = weights
    ensure_free_space(outfile.parent, int(src.stat().st_size / 2 * BITS_PER_WEIGHT[quant] / 8), f"the {quant} GGUF")
    if dry_run:
        logger.info("dry run: %s would quantize to %s (%s)", src, outfile, quant)
        return outfile
    tmp = temporary_sibling(outfile)
    logger.info("quantizing %s -> %s (%s)", src, outfile, quant)
    quantize(src, tmp, quant)
    check_gguf(tmp)
    publish(tmp, outfile)
    return outfile
