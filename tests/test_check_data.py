"""The dataset validator: each rule with an input that breaks it, and the shipped dataset."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from conftest import ROOT

from tutor_algoritmos.check_data import check, question_type

GOOD_OUTPUT = ("Una pila guarda elementos y saca primero el último que entró.\n\n```python\n"
               "pila = [1, 2]\npila.append(3)\nassert pila.pop() == 3\n```\n\n"
               "Complejidad: O(1) por operación.\n\nAnalogía: una pila de platos en la cocina.")


def entry(question="[Pilas] - ¿Qué es una pila?", output=GOOD_OUTPUT) -> str:
    return json.dumps({"instruction": question, "output": output}, ensure_ascii=False)


def with_code(code: str) -> str:
    return entry("[Pilas] - ¿Me muestras el código?", GOOD_OUTPUT.replace(
        "pila = [1, 2]\npila.append(3)\nassert pila.pop() == 3\n", code + "\nassert True\n"))


def dialogue(*turns: str, topic="Pilas", kind="dialogue", **extra) -> str:
    """A dialogue row whose turns alternate user, assistant, user, ..."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return json.dumps({"topic": topic, "kind": kind, "messages": messages, **extra}, ensure_ascii=False)


PASTED = "mi pila falla:\n```python\ndef tope(p):\n    return p[0]\n```"
FIXED = "El tope es el último: usa `p[-1]`.\n```python\ndef tope(p):\n    return p[-1]\nassert tope([1, 2]) == 2\n```"


def problems_of(tmp_path, content: bytes | str, **kwargs) -> list[str]:
    path = tmp_path / "data.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return [p.format(path).split(": ", 1)[1] if p.line == 0 else f"{p.line}: {p.what}"
            for p in check(path, **kwargs)[1]]


CASES = {
    "truncated JSON": ('{"instruction": "[Pilas] - ¿Qué es?", "output": "x', "1: invalid JSON"),
    "not an object": ('["[Pilas] - ¿Qué es?", "x"]', "1: a JSON list instead of an object"),
    "missing field": ('{"instruction": "[Pilas] - ¿Qué es?"}', "1: missing output"),
    "extra field": (entry()[:-1] + ', "tema": "pilas"}', "1: unexpected tema"),
    "non-string": ('{"instruction": "[Pilas] - ¿Qué es?", "output": 3}', "1: output is a int, not a string"),
    "empty value": ('{"instruction": "[Pilas] - ¿Qué es?", "output": "  "}', "1: output is empty"),
    "no topic tag": (entry("¿Qué es una pila?"), "1: instruction does not start with '[Tema] - '"),
    "no python block": (entry(output="Sin código.\n\nAnalogía: platos."), "1: the answer has no ```python block"),
    "no analogy": (entry(output=GOOD_OUTPUT.replace("Analogía:", "Ejemplo:")),
                   "1: the answer has no paragraph that starts with 'Analogía:'"),
    "failing assert": (with_code("assert 1 + 1 == 3, 'suma mal'"),
                       "1: python block 1 raises AssertionError: suma mal"),
    "no assert": (entry(output=GOOD_OUTPUT.replace("assert pila.pop() == 3", "pila.pop()")),
                  "1: python block 1 checks nothing"),
    "endless loop": (with_code("while True:\n    pass"), "1: python block 1 used more than 1 s of CPU"),
    "memory bomb": (with_code("x = 'a' * (4 * 1024 ** 3)"),
                    "1: python block 1 ran out of its 1024 MiB memory limit"),
    "writes a file": (with_code("open('salida.txt', 'w').write('x')"), "1: python block 1 touches files"),
    "spawns a process": (with_code("import os\nos.system('true')"), "1: python block 1 touches files, processes"),
    "exact duplicate": (entry() + "\n" + entry("[Pilas] - ¿Qué es una PILA?"), "2: same question as line 1"),
    "near duplicate": (entry("[Pilas] - ¿Qué es una pila y para qué sirve en un programa?") + "\n" +
                       entry("[Pilas] - ¿Qué es exactamente una pila y para qué sirve en un programa?"),
                       "2: near duplicate of line 1"),
    "empty file": ("\n\n", "the file is empty"),
    "unknown kind": (entry()[:-1] + ', "kind": "pista"}', "1: unknown kind 'pista'"),
    "system turn": (json.dumps({"topic": "Pilas", "messages": [{"role": "system", "content": "x"}]}),
                    "1: message 1 has the system role"),
    "roles out of order": (json.dumps({"topic": "Pilas", "messages": [{"role": "user", "content": "¿Qué es?"},
                                                                       {"role": "user", "content": "¿y?"}]}),
                           "1: message 2 has role 'user' where 'assistant' belongs"),
    "empty turn": (dialogue("¿Qué es?", "Una pila.", " ", "Sí."), "1: message 3 (user) is empty"),
    "student speaks last": (dialogue("¿Qué es?", "Una pila.", "¿y?"), "1: the last message is the student's"),
    "no topic": (dialogue("¿Qué es?", "Una pila.", topic=" "), "1: topic is missing or empty"),
    "tag in a dialogue": (dialogue("[Pilas] - ¿Qué es?", "Una pila.", "¿y?", "Sí."),
                          "1: message 1 starts with a '[Tema] - ' tag"),
    "tag without its spaces": (dialogue("[Pilas]- ¿Qué es?", "Una pila.", "¿y?", "Sí."),
                               "1: message 1 starts with a '[Tema] - ' tag"),
    "tag in a later turn": (dialogue("¿Qué es una pila?", "LIFO.", "[Colas] – ¿y una cola?", "FIFO."),
                            "1: message 3 starts with a '[Tema] - ' tag"),
    "two tags": (entry("[Pilas] - [Colas] - ¿Qué es?"), "1: the question after '[Tema] - ' starts with another tag"),
    "failing assert in a later turn": (dialogue("¿Qué es?", "Una pila.", "¿código?",
                                                "```python\nassert [1].pop() == 2\n```"),
                                       "1: python block 1 raises AssertionError"),
    "feedback without the code": (dialogue("mi pila falla, ¿por qué?", FIXED, kind="feedback-code"),
                                  "1: feedback-code: the student's first message shows no code or traceback"),
    "student code that does not parse": (dialogue(PASTED.replace("(p):", "(p)"), FIXED, kind="feedback-code"),
                                         "1: the student's code does not parse"),
    "long short answer": (dialogue("¿pop es O(1)?", "Sí. " * 200, kind="short"),
                          "1: a short answer of 800 characters (> 700)"),
    "ask-for-code with the code": (dialogue(PASTED, "¿Me pegas el código?", kind="ask-for-code"),
                                   "1: ask-for-code: the student already pasted code"),
    "one-turn dialogue": (dialogue("¿Qué es?", "Una pila."), "1: a dialogue with one student turn"),
    "near duplicate across formats": (entry("[Pilas] - ¿Qué es una pila y para qué sirve en un programa?") + "\n" +
                                      dialogue("¿Qué es exactamente una pila y para qué sirve en un programa?",
                                               "LIFO.", "¿y?", "Eso."), "2: near duplicate of line 1"),
    "blank line inside": (entry() + "\n\n" + entry("[Colas] - ¿Qué es una cola?"), "2: blank line"),
}


@pytest.mark.parametrize("case", CASES)
def test_each_rule_reports_its_line(tmp_path, case):
    content, expected = CASES[case]
    problems = problems_of(tmp_path, content, cpu_seconds=1)
    assert any(p.startswith(expected) for p in problems), problems


def test_tutoring_kinds_need_neither_analogy_nor_code(tmp_path):
    rows = [dialogue(PASTED, FIXED, kind="feedback-code"),
            dialogue("no me des la solución, ¿cómo invierto una pila?", "Pista 1: ¿qué estructura invierte el orden?",
                     kind="hint"),
            dialogue("¿pop es O(1)?", "Sí, en una lista de Python.", kind="short"),
            dialogue("mi pila falla, ¿por qué?", "¿Me pegas la función y el error completo?", kind="ask-for-code"),
            dialogue("¿qué es LIFO?", "El último en entrar sale primero. ¿Qué sale de [1, 2]?", "el 2", "¡Exacto!"),
            dialogue("¿por qué da error?\n```python\ndef f(:\n```\nSyntaxError: invalid syntax", "Falta el "
                     "nombre del parámetro: `def f(x):`.", topic="Recursión", kind="feedback-code")]
    assert problems_of(tmp_path, "\n".join(rows)) == []


def test_invalid_utf8(tmp_path):
    assert problems_of(tmp_path, entry().encode() + b"\n\xff\xfe{}\n") == ["2: not valid UTF-8 (byte 0)"]


def test_bom_crlf_and_trailing_blank_lines_are_fine(tmp_path):
    content = "\ufeff" + entry() + "\r\n" + entry("[Colas] - ¿Qué es una cola?") + "\r\n\r\n\n"
    assert problems_of(tmp_path, content) == []


def test_near_duplicate_keeps_apart_questions_about_different_things(tmp_path):
    content = entry("[Inserción] - ¿Cuándo conviene usar el ordenamiento por inserción?") + "\n" + \
        entry("[Selección] - ¿Cuándo conviene usar el ordenamiento por selección?")
    assert problems_of(tmp_path, content) == []


def test_too_many_tokens(tmp_path, tiny_model):
    long = entry(output=GOOD_OUTPUT + " palabra" * 2100)
    [problem] = problems_of(tmp_path, long, tokenizer=str(tiny_model), max_length=2048)
    assert problem.startswith("1: ") and problem.endswith("tokens with the system prompt and chat template, "
                                                          "over max_length 2048")


def test_cli_reports_all_problems_at_once_without_traceback(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join([entry(), "{roto", entry("sin tema"), with_code("assert False")]), encoding="utf-8")
    before = set(os.listdir(ROOT))
    result = subprocess.run([sys.executable, "-m", "tutor_algoritmos.check_data", str(data)], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(data))]
    assert [line.split(":")[1] for line in lines] == ["2", "3", "4"]
    assert all(" — " in line for line in lines)  # what is wrong — how to fix it
    assert "3 problem(s)" in result.stderr
    assert set(os.listdir(ROOT)) == before and os.listdir(tmp_path) == ["bad.jsonl"]


def test_no_exec_skips_running(tmp_path):
    assert problems_of(tmp_path, with_code("assert False"), execute=False) == []


def test_missing_file(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tutor_algoritmos.check_data", str(tmp_path / "nope.jsonl")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "no such file" in result.stderr and "Traceback" not in result.stderr


def test_question_types():
    assert question_type("¿Puedes hacer paso a paso BFS en este grafo?") == "traza"
    assert question_type("¿Por qué mi BFS no encuentra el camino más corto con pesos?") == "depuración"
    assert question_type("¿Qué diferencia hay entre BFS y DFS?") == "comparación"
    assert question_type("¿Cuál es la complejidad de Dijkstra con heap?") == "complejidad"
    assert question_type("¿Cuándo conviene usar Bellman-Ford?") == "cuándo usar"
    assert question_type("¿Me muestras el código de Kruskal?") == "código"
    assert question_type("¿Qué es la memoización?") == "concepto"


# The floor of each tutoring move in the shipped file (the tutoring-lessons issue): (rows, topics).
KIND_FLOOR = {"feedback-code": (60, 30), "feedback-reasoning": (30, 1), "hint": (25, 1), "dialogue": (60, 1),
              "short": (25, 1), "ask-for-code": (10, 1)}


@pytest.mark.slow  # runs every example of the shipped file
def test_shipped_dataset_meets_the_curriculum_floor(tiny_model):
    # The tiny model carries Phi-3.5's real tokenizer, so token lengths are the real ones.
    records, problems = check(ROOT / "algoritmos_fixed.jsonl", tokenizer=str(tiny_model), max_length=2048)
    assert [p.format(ROOT / "algoritmos_fixed.jsonl") for p in problems] == []
    topics = Counter(r.topic for r in records)
    assert len(records) >= 560 and len(topics) >= 40 and min(topics.values()) >= 5
    # every question type a lesson covers (debugging questions are feedback-code rows now)
    assert set(Counter(question_type(r.question) for r in records if r.kind == "lesson")) >= \
        {"traza", "comparación", "complejidad", "cuándo usar", "código", "concepto"}
    for kind, (rows, kind_topics) in KIND_FLOOR.items():
        of_kind = [r for r in records if r.kind == kind]
        assert len(of_kind) >= rows and len({r.topic for r in of_kind}) >= kind_topics, kind
    assert all(2 <= len(r.student_turns) <= 4 for r in records if r.kind == "dialogue")


def test_no_answer_guesses_code_it_was_not_shown():
    # Feedback is on the student's own code: a "why does my code fail" row shows it, and no answer
    # invents it ("Seguramente se parece a esto", "Apuesto a que...").
    records, _ = check(ROOT / "algoritmos_fixed.jsonl", execute=False)
    guess = re.compile(r"seguramente (tu código|tu función|se parece)|apuesto a que|casi seguro que", re.I)
    for r in records:
        for answer in r.answers:
            assert not guess.search(answer), r.line
        if r.question.lower().startswith(("¿por qué mi", "por que mi")):
            assert r.kind == "feedback-code" and "```python" in r.question, r.line


@pytest.mark.parametrize(("train_args", "expected"), [("", 2048), ("--max_length 4096", 4096),
                                                      ("--max_length=3000", 3000), ("--max-length 1024", 1024),
                                                      ("--max_steps 2 --eval_strategy no", 2048)])
def test_check_data_reads_the_runs_max_length_as_training_would(train_args, expected):
    from tutor_algoritmos.recipe import max_length_of

    assert max_length_of(train_args) == expected

