"""Chat formats as Ollama needs them: a Go TEMPLATE and the stop strings, per model family.

Ollama does not derive Phi-3.5's template from the GGUF (it falls back to `{{ .Prompt }}`), so
the Modelfile must carry both. Each TEMPLATE is written so that Ollama's per-turn rendering
(`.System/.Prompt/.Response`, with everything after `{{ .Response }}` dropped on the last turn)
reproduces the model's Hugging Face chat template byte for byte (tests/test_template_identity.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tutor_algoritmos.errors import UserError


@dataclass(frozen=True)
class ChatFormat:
    name: str
    marker: str  # text only this family's HF chat template contains
    end_of_turn: str  # the token that closes an answer: training labels it, serving stops on it
    template: str
    stops: tuple[str, ...]
    gguf_name_must_contain: str = ""  # llama.cpp switches tokenizer behaviour on general.name


PHI3 = ChatFormat(
    name="phi3",
    marker="<|assistant|>",
    end_of_turn="<|end|>",
    template=(
        "{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}"
        "{{ if .Prompt }}<|user|>\n{{ .Prompt }}<|end|>\n{{ end }}"
        "<|assistant|>\n{{ .Response }}<|end|>\n"
    ),
    # <|end|> closes every turn; the role tokens catch a model that starts a new turn itself;
    # <|endoftext|> is the tokenizer's eos.
    stops=("<|end|>", "<|user|>", "<|assistant|>", "<|system|>", "<|endoftext|>"),
    # src/llama-vocab.cpp gives Phi-3's special tokens their rstrip only for names with "phi-3".
    gguf_name_must_contain="phi-3",
)

CHATML = ChatFormat(
    name="chatml",
    marker="<|im_start|>",
    end_of_turn="<|im_end|>",
    template=(
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
    ),
    stops=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
)

FORMATS = (PHI3, CHATML)


def detect_chat_format(chat_template: str | None) -> ChatFormat:
    """The family whose marker appears in a Hugging Face (Jinja) chat template."""
    for fmt in FORMATS:
        if chat_template and fmt.marker in chat_template:
            return fmt
    known = ", ".join(f"{f.name} ({f.marker})" for f in FORMATS)
    raise UserError(f"unknown chat template (none of {known}) — add its format to "
                    "tutor_algoritmos/chat_formats.py")
