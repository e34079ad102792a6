"""Chat with a built GGUF in the terminal through llama.cpp, as `ollama run` would serve it.

    python -m tutor_algoritmos.chat out/Modelfile        # or: make chat

Reads the Modelfile (FROM, SYSTEM, temperature, num_ctx, stops) so the experience is the one
Ollama gives, on machines without Ollama. Answers stream token by token; Ctrl-D or "salir" ends.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tutor_algoritmos.errors import UserError
from tutor_algoritmos.modelfile_syntax import parse_modelfile


@dataclass
class ModelfileSettings:
    gguf: Path
    system: str
    temperature: float = 0.8
    num_ctx: int = 2048
    stops: list[str] = field(default_factory=list)


def read_modelfile(path: Path) -> ModelfileSettings:
    """The settings of a Modelfile, read with Ollama's rules (tutor_algoritmos.modelfile_syntax)."""
    if not path.is_file():
        raise UserError(f"{path} does not exist — run `make modelfile` first")
    commands = parse_modelfile(path.read_text(encoding="utf-8"))
    values = dict(commands)  # the last of a repeated command wins, as in Ollama
    if "model" not in values or "system" not in values:
        raise UserError(f"{path} has no FROM or SYSTEM line — regenerate it with `make modelfile`")
    gguf = (path.parent / Path(values["model"]).expanduser()).resolve()
    if not gguf.is_file():
        raise UserError(f"{path} points at {gguf}, which does not exist — run `make gguf`")
    return ModelfileSettings(gguf=gguf, system=values["system"],
                             temperature=float(values.get("temperature", 0.8)),
                             num_ctx=int(values.get("num_ctx", 2048)),
                             stops=[value for name, value in commands if name == "stop"])


def chat(settings: ModelfileSettings, read=input, write=sys.stdout.write, max_tokens: int | None = None) -> None:
    from tutor_algoritmos.gguf_tools import load_llama

    llm = load_llama(settings.gguf, n_ctx=settings.num_ctx)
    messages = [{"role": "system", "content": settings.system}]
    write(f"Tutor de Algoritmos ({settings.gguf.name}). Escribe tu pregunta; 'salir' para terminar.\n")
    try:
        while True:
            try:
                question = read("\n> ").strip()
            except EOFError:
                break
            if question.lower() in {"salir", "exit", "quit"}:
                break
            if not question:
                continue
            messages.append({"role": "user", "content": question})
            answer = []
            for chunk in llm.create_chat_completion(messages=messages, temperature=settings.temperature,
                                                    stop=settings.stops, stream=True, max_tokens=max_tokens):
                piece = chunk["choices"][0]["delta"].get("content", "")
                answer.append(piece)
                write(piece)
                if hasattr(sys.stdout, "flush"):
                    sys.stdout.flush()
            write("\n")
            messages.append({"role": "assistant", "content": "".join(answer)})
    finally:
        llm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modelfile", type=Path, nargs="?", default=Path("out/Modelfile"))
    chat(read_modelfile(parser.parse_args().modelfile))


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
