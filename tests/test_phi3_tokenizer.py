"""The fixture's tokenizer is Phi-3.5's: llama.cpp's reference vectors and the chat-token facts."""

from __future__ import annotations

from conftest import LLAMA_CPP_DIR

VOCAB = LLAMA_CPP_DIR / "models" / "ggml-vocab-phi-3.gguf"


def test_reference_tokenization_vectors(tokenizer):
    texts = VOCAB.with_suffix(".gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    expected = VOCAB.with_suffix(".gguf.out").read_text(encoding="utf-8").split("\n")
    assert len(texts) == 47
    for text, ids in zip(texts, expected, strict=False):
        assert tokenizer.encode(text, add_special_tokens=False) == [int(i) for i in ids.split()], repr(text)


def test_special_token_ids(tokenizer):
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in
           ["<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"]}
    assert ids == {"<unk>": 0, "<s>": 1, "</s>": 2, "<|endoftext|>": 32000, "<|assistant|>": 32001,
                   "<|system|>": 32006, "<|end|>": 32007, "<|user|>": 32010}
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"


def test_role_tokens_strip_the_newline_and_text_gets_a_leading_space(tokenizer):
    assert tokenizer.encode("Hello<|end|>", add_special_tokens=False) == [15043, 32007]  # '▁Hello'
    ids = tokenizer.encode("<|user|>\nHola", add_special_tokens=False)
    assert ids == tokenizer.encode("<|user|>Hola", add_special_tokens=False)
    assert tokenizer.convert_ids_to_tokens(ids) == ["<|user|>", "▁H", "ola"]
    # <|endoftext|> does not strip: the newline after it survives as a token of its own
    assert tokenizer.encode("<|endoftext|>\n", add_special_tokens=False)[0] == 32000
    assert len(tokenizer.encode("<|endoftext|>\n", add_special_tokens=False)) > 1


def test_sentencepiece_model_agrees_with_fast_tokenizer(tiny_model, tokenizer):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_model / "tokenizer.model"))
    assert sp.vocab_size() == 32000
    text = "¿Por qué mi BFS no encuentra el camino más corto? def bfs(g, s):\n    return [s]  # ñandú"
    assert sp.encode(text) == tokenizer.encode(text, add_special_tokens=False)
