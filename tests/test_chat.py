"""`make chat` keeps the conversation inside num_ctx: whole exchanges go, the system prompt stays."""

from __future__ import annotations

from tutor_algoritmos.chat import fit_history
from tutor_algoritmos.dataset import with_system


def exchange(i: int) -> list[dict]:
    return [{"role": "user", "content": f"pregunta {i} " * 40},
            {"role": "assistant", "content": f"respuesta número {i} " * 80}]


def test_oldest_exchanges_go_first_and_the_system_prompt_stays(tokenizer):
    def count(messages):  # the real Phi-3.5 tokenizer and chat template
        return len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                 return_dict=True)["input_ids"])

    question = {"role": "user", "content": "¿y ahora qué hago?"}
    messages = with_system([*exchange(1), *exchange(2), *exchange(3), question])
    full = count(messages)
    assert fit_history(messages, count, num_ctx=full + 100, reply_budget=100) == (messages, 0)

    kept, dropped = fit_history(messages, count, num_ctx=full + 99, reply_budget=100)
    assert dropped == 1 and kept == with_system([*exchange(2), *exchange(3), question])
    assert count(kept) + 100 <= full + 99

    one_exchange = count(with_system([*exchange(3), question]))
    kept, dropped = fit_history(messages, count, num_ctx=one_exchange + 100, reply_budget=100)
    assert dropped == 2 and kept == with_system([*exchange(3), question])

    kept, dropped = fit_history(messages, count, num_ctx=200, reply_budget=100)
    assert dropped == 3 and kept == with_system([question])  # too long even alone: the caller says so
