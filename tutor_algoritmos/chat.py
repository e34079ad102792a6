"""Chat with a built GGUF in the terminal through llama.cpp, as `ollama run` would serve it.

    python -m tutor_algoritmos.chat out/Modelfile        # or: make chat

Reads the Modelfile (FROM, SYSTEM, temperature, num_ctx, num_predict, stops) so the experience is
the one Ollama gives, on machines without Ollama. Answers stream token by token; the conversation
is kept, and when the next question plus a reply of num_predict tokens would not fit in num_ctx
the oldest exchanges are dropped (never the system prompt) with a one-line notice. "/reset"
starts over; Ctrl-D or "salir" ends.
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
    # Ollama's defaults, for a Modelfile that leaves a parameter out
    temperature: float = 0.8
    num_ctx: int = 2048
    num_predict: int = 512
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
    settings = ModelfileSettings(gguf=gguf, system=values["system"],
                                 stops=[value for name, value in commands if name == "stop"])
    for name, kind in (("temperature", float), ("num_ctx", int), ("num_predict", int)):
        if name in values:
            setattr(settings, name, kind(values[name]))
    return settings


def fit_history(messages: list[dict], count_tokens, num_ctx: int, reply_budget: int) -> tuple[list[dict], int]:
    """The messages without their oldest exchanges, so that the prompt plus a reply fit in num_ctx.

    messages = [system, user, assistant, ..., user]. Whole exchanges go (a question never loses its
    answer, nor an answer its question) and the system prompt always stays. Returns the kept
    messages and how many exchanges were dropped; if the last question alone does not fit, it is
    returned anyway and the caller says so.
    """
    system, turns, dropped = messages[:1], messages[1:], 0
    while len(turns) > 1 and count_tokens(system + turns) + reply_budget > num_ctx:
        turns, dropped = turns[2:], dropped + 1
    return system + turns, dropped


def prompt_token_counter(llm, chat_template: str):
    """Tokens of the prompt llama.cpp builds for a conversation (the GGUF's template + tokenizer)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(chat_template, eos_token="", bos_token="")

    def count(messages: list[dict]) -> int:
        return len(llm.tokenize(formatter(messages=messages).prompt.encode("utf-8"), add_bos=False, special=True))
    return count


def chat(settings: ModelfileSettings, read=input, write=sys.stdout.write, max_tokens: int | None = None) -> None:
    from tutor_algoritmos.gguf_tools import load_llama, read_gguf_info

    llm = load_llama(settings.gguf, n_ctx=settings.num_ctx)
    count_tokens = prompt_token_counter(llm, read_gguf_info(settings.gguf).chat_template)
    reply_budget = max_tokens or settings.num_predict
    messages = [{"role": "system", "content": settings.system}]
    write(f"Tutor de Algoritmos ({settings.gguf.name}). Escribe tu pregunta; '/reset' para empezar de nuevo, "
          "'salir' para terminar.\n")
    try:
        while True:
            try:
                question = read("\n> ").strip()
            except EOFError:
                break
            if question.lower() in {"salir", "exit", "quit"}:
                break
            if question == "/reset":
                messages = messages[:1]
                write("(conversación reiniciada)\n")
                continue
            if not question:
                continue
            messages, dropped = fit_history(messages + [{"role": "user", "content": question}], count_tokens,
                                            settings.num_ctx, reply_budget)
            if dropped:
                oldest = "el intercambio más antiguo" if dropped == 1 else f"los {dropped} intercambios más antiguos"
                write(f"(olvido {oldest} para que la conversación quepa en {settings.num_ctx} tokens)\n")
            if count_tokens(messages) + reply_budget > settings.num_ctx:
                write(f"(la pregunta es demasiado larga para {settings.num_ctx} tokens de contexto: acórtala)\n")
                messages.pop()
                continue
            answer = []
            for chunk in llm.create_chat_completion(messages=messages, temperature=settings.temperature,
                                                    stop=settings.stops, stream=True, max_tokens=reply_budget):
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
