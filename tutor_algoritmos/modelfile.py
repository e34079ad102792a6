"""Write the Ollama Modelfile: FROM, the family's TEMPLATE and stops, parameters, SYSTEM.

    python -m tutor_algoritmos.modelfile --gguf out/tutor_algoritmos.gguf --out out/Modelfile
    python -m tutor_algoritmos.modelfile --canonical > Modelfile   # the top-level Phi-3.5 one

The chat format is read from the GGUF's embedded chat template, so a Phi-3.5 GGUF gets the Phi-3
template and a SmolLM2 GGUF gets ChatML from the same code. SYSTEM is `prompts.SYSTEM_PROMPT`.

Long conversations: when history plus the reply overflow num_ctx, llama.cpp's context shift keeps
the first `num_keep` tokens (Ollama's default: 4) and drops half of the rest, so the tutor would
lose its system prompt after a few long exchanges without a word. `num_keep` is therefore the
measured token length of the rendered system block, tokenized by the GGUF's own vocabulary, and
`num_predict` caps a reply at REPLY_BUDGET, which holds every answer of the dataset.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tutor_algoritmos.chat_formats import PHI3, ChatFormat
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import publish_text
from tutor_algoritmos.modelfile_syntax import parse_modelfile, quote_value
from tutor_algoritmos.prompts import SYSTEM_PROMPT

NUM_CTX = 4096
# Tokens a reply may take. The dataset's longest tutor turn is 1,321 Phi-3.5 tokens (a test keeps
# every answer within this); 4096 - 275 (system block) - 1536 leaves 2,285 tokens of history.
REPLY_BUDGET = 1536
CANONICAL_VOCAB = Path("llama.cpp/models/ggml-vocab-phi-3.gguf")  # Phi-3.5's vocabulary, from llama.cpp


def parameters(num_keep: int) -> tuple[tuple[str, str, str], ...]:
    """(name, value, why) — rendered as a comment line above each PARAMETER."""
    return (
        ("temperature", "0.7",
         "0.7: varied wording across answers while the code and the facts stay on track"),
        ("num_ctx", str(NUM_CTX),
         f"{NUM_CTX} tokens: a lesson and several follow-ups fit, and it stays inside Phi-3.5's original\n"
         "# 4k window, where LongRoPE uses its short factors (the ones most training saw)"),
        ("num_keep", str(num_keep),
         f"{num_keep} tokens = the system block below as this model tokenizes it: when a long conversation\n"
         "# overflows num_ctx, llama.cpp keeps these and drops old turns, so the tutor keeps its role"),
        ("num_predict", str(REPLY_BUDGET),
         f"{REPLY_BUDGET} tokens: room for the longest answer of the dataset, and the history still fits"),
    )


def system_block_tokens(vocab_gguf: Path, fmt: ChatFormat, system: str = SYSTEM_PROMPT) -> int:
    """Tokens of the system part of the rendered prompt, with the GGUF's own tokenizer."""
    from tutor_algoritmos.gguf_tools import load_llama

    llm = load_llama(vocab_gguf, vocab_only=True)
    try:
        return len(llm.tokenize(fmt.system_block(system).encode("utf-8"), add_bos=False, special=True))
    finally:
        llm.close()


def render_modelfile(gguf: str, fmt: ChatFormat, num_keep: int, system: str = SYSTEM_PROMPT) -> str:
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
    for name, value, why in parameters(num_keep):
        lines += ["", f"# {why}", f"PARAMETER {name} {value}"]
    lines += ["", "# The exact system prompt used in training (tutor_algoritmos/prompts.py).",
              f"SYSTEM {quote_value(system, 'SYSTEM')}", ""]
    text = "\n".join(lines)
    expected = [("model", gguf), ("template", fmt.template), *(("stop", s) for s in fmt.stops),
                *((name, value) for name, value, _ in parameters(num_keep)), ("system", system)]
    if parse_modelfile(text) != expected:  # each value was checked alone; this checks them together
        raise AssertionError("the Modelfile would not read back as written — a bug in modelfile_syntax.py")
    return text


def write_modelfile(gguf: Path, out: Path) -> Path:
    from tutor_algoritmos.gguf_tools import read_gguf_info

    if not gguf.is_file():
        raise UserError(f"{gguf} does not exist — run `make gguf` first")
    fmt = read_gguf_info(gguf).chat_format
    relative = Path(os.path.relpath(gguf.resolve(), out.resolve().parent)).as_posix()
    publish_text(out, render_modelfile(f"./{relative}", fmt, system_block_tokens(gguf, fmt)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="the GGUF the Modelfile serves")
    parser.add_argument("--out", type=Path, help="Modelfile to write (FROM is relative to it)")
    parser.add_argument("--canonical", action="store_true",
                        help="print the top-level Phi-3.5 Modelfile instead")
    parser.add_argument("--vocab-gguf", type=Path, default=CANONICAL_VOCAB,
                        help="with --canonical: Phi-3.5's vocabulary, to measure num_keep")
    args = parser.parse_args()
    if args.canonical:
        print(render_modelfile("./tutor_algoritmos.gguf", PHI3, system_block_tokens(args.vocab_gguf, PHI3)), end="")
    elif args.gguf and args.out:
        print(write_modelfile(args.gguf, args.out))
    else:
        parser.error("pass --gguf and --out, or --canonical")


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
