"""Chat formats as Ollama needs them: a Go TEMPLATE and the stop strings, per model family.

Ollama does not derive Phi-3.5's template from the GGUF (it falls back to `{{ .Prompt }}`), so
the Modelfile must carry both. Each TEMPLATE is written so that Ollama's per-turn rendering
(`.System/.Prompt/.Response`, with everything after `{{ .Response }}` dropped on the last turn)
reproduces the model's Hugging Face chat template byte for byte (tests/test_modelfile.py).

Training needs the same template with `{% generation %}` markers around each answer, so TRL's
assistant_only_loss labels every assistant turn of a dialogue and masks the rest:
`training_chat_template`.
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

    def system_block(self, system: str) -> str:
        """What the TEMPLATE renders for the system prompt: the part `num_keep` must protect."""
        head = self.template.split("{{ end }}", 1)[0].removeprefix("{{ if .System }}")
        return head.replace("{{ .System }}", system)


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


# SmolLM2's ChatML with the answer and its <|im_end|>\n inside {% generation %}. TRL 1.16 ships
# training variants only for the templates it recognises (phi3_5_training.jinja for Phi-3.5);
# SmolLM2's is not one of them. The trailing \n stays labelled because the prompt/completion
# format labelled it too (the completion was everything after "<|im_start|>assistant\n").
CHATML_TRAINING_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\n' }}{% generation %}{{- message['content'] + '<|im_end|>\n' }}{% endgeneration %}"
    "{%- else %}{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
# A conversation as training renders it: the training template must reproduce it byte for byte.
PROBE = [{"role": "system", "content": "Sistema."}, {"role": "user", "content": "¿Uno?"},
         {"role": "assistant", "content": "Uno."}, {"role": "user", "content": "¿Y dos?"},
         {"role": "assistant", "content": "Dos."}]


def training_chat_template(tokenizer) -> str:
    """The tokenizer's chat template with `{% generation %}` around each answer and its end of turn.

    TRL's own training variant where it has one, CHATML_TRAINING_TEMPLATE for ChatML otherwise. The
    result must render a conversation exactly as the model's template does, or the model would be
    trained on other text than it is served with.
    """
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    original = tokenizer.chat_template
    if has_generation_markers(original):
        return original
    try:
        template = get_training_chat_template(tokenizer)
    except ValueError:  # not a template TRL knows
        template = CHATML_TRAINING_TEMPLATE if detect_chat_format(original) is CHATML else None
    if template is None or (tokenizer.apply_chat_template(PROBE, tokenize=False, chat_template=template)
                            != tokenizer.apply_chat_template(PROBE, tokenize=False)):
        raise UserError("no training variant of this model's chat template (one that marks every "
                        "answer for the loss) — add one to tutor_algoritmos/chat_formats.py")
    return template
