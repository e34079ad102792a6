"""Write the Ollama Modelfile: FROM, the family's TEMPLATE and stops, parameters, SYSTEM.

    python -m tutor_algoritmos.modelfile --gguf out/tutor_algoritmos.gguf --out out/Modelfile
    python -m tutor_algoritmos.modelfile --canonical > Modelfile   # the top-level Phi-3.5 one

The chat format is read from the GGUF's embedded chat template, so a Phi-3.5 GGUF gets the Phi-3
template and a SmolLM2 GGUF gets ChatML from the same code. SYSTEM is `prompts.SYSTEM_PROMPT`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tutor_algoritmos.chat_formats import PHI3, ChatFormat
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import publish, temporary_sibling
from tutor_algoritmos.modelfile_syntax import parse_modelfile, quote_value
from tutor_algoritmos.prompts import SYSTEM_PROMPT

# (name, value, why) — rendered as a comment line above each PARAMETER.
PARAMETERS = (
    ("temperature", "0.7",
     "0.7: varied wording across answers while the code and the facts stay on track"),
    ("num_ctx", "4096",
     "4096 tokens: a long lesson plus a follow-up fit, and it stays inside Phi-3.5's original\n"
     "# 4k window, where LongRoPE uses its short factors (the ones most training saw)"),
)


def render_modelfile(gguf: str, fmt: ChatFormat, system: str = SYSTEM_PROMPT) -> str:
    lines = [
        "# Tutor de Algoritmos for Ollama: ollama create tutor-algoritmos -f Modelfile",
        "# Written by tutor_algoritmos/modelfile.py; edit that file, not this one.",
        f"FROM {quote_value(gguf, 'the GGUF path', ('bare', 'quoted', 'triple'))}",
        "",
        f"# {fmt.name} chat format; Ollama does not take it from the GGUF on its own.",
        f"TEMPLATE {quote_value(fmt.template, 'TEMPLATE')}",
        "",
        f"# Stop at the end of the answer ({fmt.end_of_turn}) or if the model starts another turn;",
        "# without these it keeps talking, playing the student too.",
    ]
    lines += [f"PARAMETER stop {quote_value(stop, 'stop', ('quoted', 'triple'))}" for stop in fmt.stops]
    for name, value, why in PARAMETERS:
        lines += ["", f"# {why}", f"PARAMETER {name} {value}"]
    lines += ["", "# The exact system prompt used in training (tutor_algoritmos/prompts.py).",
              f"SYSTEM {quote_value(system, 'SYSTEM')}", ""]
    text = "\n".join(lines)
    expected = [("model", gguf), ("template", fmt.template), *(("stop", s) for s in fmt.stops),
                *((name, value) for name, value, _ in PARAMETERS), ("system", system)]
    if parse_modelfile(text) != expected:  # each value was checked alone; this checks them together
        raise UserError("the Modelfile would not read back as written — report this as a bug")
    return text


def write_modelfile(gguf: Path, out: Path) -> Path:
    from tutor_algoritmos.gguf_tools import read_gguf_info

    if not gguf.is_file():
        raise UserError(f"{gguf} does not exist — run `make gguf` first")
    fmt = read_gguf_info(gguf).chat_format
    relative = Path(os.path.relpath(gguf.resolve(), out.resolve().parent)).as_posix()
    tmp = temporary_sibling(out)
    tmp.write_text(render_modelfile(f"./{relative}", fmt), encoding="utf-8")
    publish(tmp, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="the GGUF the Modelfile serves")
    parser.add_argument("--out", type=Path, help="Modelfile to write (FROM is relative to it)")
    parser.add_argument("--canonical", action="store_true",
                        help="print the top-level Phi-3.5 Modelfile instead")
    args = parser.parse_args()
    if args.canonical:
        print(render_modelfile("./tutor_algoritmos.gguf", PHI3), end="")
    elif args.gguf and args.out:
        print(write_modelfile(args.gguf, args.out))
    else:
        parser.error("pass --gguf and --out, or --canonical")


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
