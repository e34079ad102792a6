"""Inspect, check and quantize GGUF files with llama.cpp's own reader and quantizer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tutor_algoritmos.chat_formats import ChatFormat, detect_chat_format
from tutor_algoritmos.errors import UserError

logger = logging.getLogger("tutor")

OUTTYPES = ("f32", "f16", "bf16", "q8_0")  # what convert_hf_to_gguf.py writes directly
# Approximate bits per weight of each type (llama.cpp's quantize table), for the free-space check.
BITS_PER_WEIGHT = {"Q4_0": 4.5, "Q4_1": 5.0, "Q5_0": 5.5, "Q5_1": 6.0, "Q8_0": 8.5, "Q2_K": 3.4,
                   "Q3_K_S": 3.5, "Q3_K_M": 3.9, "Q3_K_L": 4.3, "Q4_K_S": 4.6, "Q4_K_M": 4.9,
                   "Q5_K_S": 5.5, "Q5_K_M": 5.7, "Q6_K": 6.6}
QUANT_TYPES = tuple(BITS_PER_WEIGHT)  # the llama_ftype names llama-cpp-python exposes


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str
    name: str
    chat_template: str | None
    tokens: list[str]

    @property
    def chat_format(self) -> ChatFormat:
        return detect_chat_format(self.chat_template)


def read_gguf_info(path: Path) -> GGUFInfo:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as err:
        raise UserError(f"{path} is not a readable GGUF file ({err}) — rebuild it with `make gguf`") from None

    def field(key: str):
        return reader.fields[key].contents() if key in reader.fields else None

    return GGUFInfo(architecture=field("general.architecture"), name=field("general.name") or "",
                    chat_template=field("tokenizer.chat_template"),
                    tokens=field("tokenizer.ggml.tokens") or [])


# llama.cpp's own default is flash attention "auto" (on wherever the backend has the kernel), which
# is what `llama-cli` and Ollama's engine run; llama-cpp-python turns it off unless asked. On this
# 2-core CPU the demo model decodes f16 11-15% faster and Q4_K_M -1% to +17% (make bench measures
# both side by side); at Phi-3.5's size the weights dominate and it is neutral.
LLAMA_CPP_DEFAULTS = {"flash_attn": True}


def load_llama(path: Path, **kwargs):
    """llama_cpp.Llama for a GGUF, or a plain-words error when llama.cpp cannot load it."""
    import llama_cpp

    if not Path(path).is_file():
        raise UserError(f"{path} does not exist — build it with `make gguf` (or `make quantize`)")
    try:
        return llama_cpp.Llama(str(path), verbose=False, **{**LLAMA_CPP_DEFAULTS, **kwargs})
    except ValueError as err:
        raise UserError(f"llama.cpp cannot load {path} ({err}): the file is truncated, not a model, or from "
                        "another llama.cpp version — delete it and rebuild it with `make gguf` / `make quantize`"
                        ) from None


def end_of_generation_ids(path: Path) -> set[int]:
    """The token ids llama.cpp itself treats as end of generation (loads the vocabulary only)."""
    import llama_cpp

    llm = load_llama(path, vocab_only=True)
    try:
        vocab = llm._model.vocab
        return {i for i in range(llama_cpp.llama_vocab_n_tokens(vocab))
                if llama_cpp.llama_vocab_is_eog(vocab, i)}
    finally:
        llm.close()


def check_gguf(path: Path, expected_architecture: str | None = None) -> GGUFInfo:
    """Architecture, embedded chat template and a working end-of-turn token, or a clear error."""
    info = read_gguf_info(path)
    if expected_architecture and info.architecture != expected_architecture:
        raise UserError(f"{path}: architecture {info.architecture}, expected {expected_architecture}")
    if not info.chat_template:
        raise UserError(f"{path} carries no chat template — the merged folder lacks tokenizer_config.json")
    fmt = info.chat_format
    if fmt.end_of_turn not in info.tokens:
        raise UserError(f"{path}: end-of-turn token {fmt.end_of_turn} is not in the vocabulary")
    eot = info.tokens.index(fmt.end_of_turn)
    if eot not in end_of_generation_ids(path):
        raise UserError(f"{path}: llama.cpp does not stop on {fmt.end_of_turn} (id {eot}) — "
                        "the model would never end its answer")
    if fmt.gguf_name_must_contain and fmt.gguf_name_must_contain not in info.name.lower():
        raise UserError(f"{path}: general.name {info.name!r} lacks {fmt.gguf_name_must_contain!r}, so "
                        "llama.cpp would tokenize its chat turns differently from training")
    return info


def quantize(src: Path, dst: Path, quant: str, threads: int = 0) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if status != 0:
        raise UserError(f"llama.cpp could not quantize {src} to {quant} (status {status})")
