"""Merge a LoRA adapter into its base, convert to GGUF with llama.cpp, quantize.

    python convert_lora_to_gguf.py merge    --base microsoft/Phi-3.5-mini-instruct \
                                            --adapter out/adapter --out out/merged
    python convert_lora_to_gguf.py convert  --merged out/merged --outfile out/tutor_algoritmos.gguf --outtype f16
    python convert_lora_to_gguf.py quantize --gguf out/tutor_algoritmos.gguf --quant Q4_K_M \
                                            --outfile out/tutor_algoritmos-Q4_K_M.gguf

Each step writes to a temporary name and renames when its output has been checked: the merge
must change every adapted weight; the GGUF must have the right architecture, the chat template
and an end-of-turn token llama.cpp stops on. llama.cpp is taken from --llama-cpp-dir, cloned at the
pinned commit when missing, or extracted from the pinned llama-cpp-python sdist when GitHub is out
of reach.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tutor_algoritmos.errors import run_cli
from tutor_algoritmos.gguf_tools import OUTTYPES, QUANT_TYPES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    dry_run = argparse.ArgumentParser(add_help=False)
    dry_run.add_argument("--dry-run", action="store_true", help="check the inputs and stop before writing")
    steps = parser.add_subparsers(dest="step", required=True)

    merge = steps.add_parser("merge", parents=[dry_run], help="fold the adapter into the base (16-bit safetensors)")
    merge.add_argument("--base", required=True, help="hub id or folder of the base model")
    merge.add_argument("--adapter", type=Path, required=True, help="folder written by train_lora.py")
    merge.add_argument("--out", type=Path, required=True, help="merged model folder to write")

    convert = steps.add_parser("convert", parents=[dry_run], help="merged folder -> GGUF with convert_hf_to_gguf.py")
    convert.add_argument("--merged", type=Path, required=True)
    convert.add_argument("--outfile", type=Path, required=True)
    convert.add_argument("--outtype", choices=OUTTYPES, default="f16",
                         help="GGUF tensor type (default f16, passed to the converter explicitly)")
    convert.add_argument("--llama-cpp-dir", type=Path, default=Path("llama.cpp"))
    convert.add_argument("--model-name", default="tutor-algoritmos", help="GGUF general.name")

    quant = steps.add_parser("quantize", parents=[dry_run], help="GGUF -> quantized GGUF with llama.cpp")
    quant.add_argument("--gguf", type=Path, required=True)
    quant.add_argument("--quant", choices=QUANT_TYPES, default="Q4_K_M")
    quant.add_argument("--outfile", type=Path, required=True)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.step == "merge":
        from tutor_algoritmos.merge import check_adapter_matches_base, merge, read_adapter_config

        if args.dry_run:
            check_adapter_matches_base(read_adapter_config(args.adapter), args.base, args.adapter)
        else:
            merge(args.base, args.adapter, args.out)
    elif args.step == "convert":
        from tutor_algoritmos.conversion import convert_to_gguf

        convert_to_gguf(args.merged, args.outfile, args.outtype, args.llama_cpp_dir, args.model_name, args.dry_run)
    else:
        from tutor_algoritmos.conversion import quantize_gguf

        quantize_gguf(args.gguf, args.outfile, args.quant, args.dry_run)


if __name__ == "__main__":
    run_cli(main)
