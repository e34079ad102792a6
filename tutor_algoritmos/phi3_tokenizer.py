"""Rebuild Phi-3.5-mini-instruct's tokenizer offline from llama.cpp's `ggml-vocab-phi-3.gguf`.

The GGUF carries the 32,064 tokens, their sentencepiece scores and types. From them we write:

- `tokenizer.model`: the sentencepiece BPE model (32,000 pieces) that llama.cpp's phi3 converter
  requires;
- `tokenizer.json`: the Hugging Face fast tokenizer cut the way the real Phi-3.5 one cuts text:
  added tokens split out first (role tokens and `<|end|>` eat the whitespace to their right), every
  segment between them normalised on its own (`▁` prepended, spaces -> `▁`) and BPE-encoded with
  byte fallback. transformers 5's own sentencepiece conversion (`legacy=False`) does not do this,
  so we assemble the pipeline with `tokenizers` directly.
"""

from __future__ import annotations

import json
from pathlib import Path

from gguf import GGUFReader
from sentencepiece import sentencepiece_model_pb2 as sp_pb2
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers
from transformers.tokenization_utils_base import generate_merges

SP_VOCAB_SIZE = 32000  # Llama-2 sentencepiece pieces; ids 32000-32063 are added tokens
MODEL_VOCAB_SIZE = 32064  # Phi-3.5 embedding rows (32011-32063 are unused padding)

# (id, text, rstrip, special) as in Phi-3.5-mini-instruct's tokenizer.json. rstrip=True tokens
# swallow the whitespace after them: '<|user|>\nHola' encodes like '<|user|>Hola'.
ADDED_TOKENS = [
    (0, "<unk>", False, True),
    (1, "<s>", False, True),
    (2, "</s>", True, False),
    (32000, "<|endoftext|>", False, True),
    (32001, "<|assistant|>", True, True),
    (32002, "<|placeholder1|>", True, True),
    (32003, "<|placeholder2|>", True, True),
    (32004, "<|placeholder3|>", True, True),
    (32005, "<|placeholder4|>", True, True),
    (32006, "<|system|>", True, True),
    (32007, "<|end|>", True, True),
    (32008, "<|placeholder5|>", True, True),
    (32009, "<|placeholder6|>", True, True),
    (32010, "<|user|>", True, True),
]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

# gguf token types (llama.cpp's llama_token_type) -> sentencepiece piece types
_SP_TYPE = {1: sp_pb2.ModelProto.SentencePiece.NORMAL, 2: sp_pb2.ModelProto.SentencePiece.UNKNOWN,
            3: sp_pb2.ModelProto.SentencePiece.CONTROL, 4: sp_pb2.ModelProto.SentencePiece.USER_DEFINED,
            5: sp_pb2.ModelProto.SentencePiece.UNUSED, 6: sp_pb2.ModelProto.SentencePiece.BYTE}


def read_gguf_vocab(vocab_gguf: Path) -> tuple[list[str], list[float], list[int]]:
    reader = GGUFReader(str(vocab_gguf))
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    scores = reader.fields["tokenizer.ggml.scores"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    if len(tokens) != MODEL_VOCAB_SIZE:
        raise ValueError(f"{vocab_gguf}: expected {MODEL_VOCAB_SIZE} tokens, found {len(tokens)}")
    return tokens, scores, types


def sentencepiece_model(tokens: list[str], scores: list[float], types: list[int]) -> bytes:
    """Serialise Llama-2-style BPE settings: byte fallback, dummy prefix, no whitespace folding."""
    proto = sp_pb2.ModelProto()
    proto.trainer_spec.model_type = sp_pb2.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = SP_VOCAB_SIZE
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id = 0, 1
    proto.trainer_spec.eos_id, proto.trainer_spec.pad_id = 2, -1
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = False
    for i in range(SP_VOCAB_SIZE):
        piece = proto.pieces.add()
        piece.piece, piece.score = tokens[i], scores[i]
        # The GGUF marks <unk>/<s> as control and </s> as user-defined (their tokenizer_config
        # flags); the sentencepiece model of Llama 2 has <unk> UNKNOWN and <s>, </s> CONTROL.
        piece.type = (sp_pb2.ModelProto.SentencePiece.UNKNOWN if i == 0
                      else sp_pb2.ModelProto.SentencePiece.CONTROL if i in (1, 2)
                      else _SP_TYPE[types[i]])
    return proto.SerializeToString()


def fast_tokenizer(tokens: list[str], scores: list[float], types: list[int]) -> Tokenizer:
    mergeable = {tok: i for i, tok in enumerate(tokens[:SP_VOCAB_SIZE]) if types[i] == 1}
    merges = generate_merges(mergeable, {tok: scores[i] for tok, i in mergeable.items()})
    vocab = {tok: i for i, tok in enumerate(tokens[:SP_VOCAB_SIZE])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    added = {i: AddedToken(text, rstrip=rstrip, lstrip=False, normalized=False, special=special)
             for i, text, rstrip, special in ADDED_TOKENS}
    for i in sorted(added):
        if i >= SP_VOCAB_SIZE:
            vocab_size = tok.get_vocab_size(with_added_tokens=True)
            if vocab_size != i:
                raise ValueError(f"added token {added[i].content} would get id {vocab_size}, not {i}")
        tok.add_tokens([added[i]]) if not added[i].special else tok.add_special_tokens([added[i]])
    return tok


def tokenizer_config() -> dict:
    decoder = {str(i): {"content": text, "lstrip": False, "normalized": False, "rstrip": rstrip,
                        "single_word": False, "special": special}
               for i, text, rstrip, special in ADDED_TOKENS}
    return {
        # PreTrainedTokenizerFast loads tokenizer.json as written; LlamaTokenizer in
        # transformers 5 would rebuild the normaliser and lose the Phi-3 cutting rules.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": decoder,
        "bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>",
        "pad_token": "<|endoftext|>",
        # Phi-3.5's template carries no BOS and its tokenizer adds none: llama.cpp reads this flag.
        "add_bos_token": False, "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 131072,
        "chat_template": CHAT_TEMPLATE,
    }


def write_phi3_tokenizer(vocab_gguf: Path, out_dir: Path) -> None:
    tokens, scores, types = read_gguf_vocab(vocab_gguf)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.model").write_bytes(sentencepiece_model(tokens, scores, types))
    fast_tokenizer(tokens, scores, types).save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(), ensure_ascii=False, indent=2), encoding="utf-8")
