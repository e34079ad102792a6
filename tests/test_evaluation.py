"""make eval's checks per kind of tutoring move, each on a hand-written good and bad answer, and the
dataset's own answers as the reference every check must accept."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from tutor_algoritmos.answer_checks import KIND_CHECKS, check_answer
from tutor_algoritmos.dataset import Record, load_records
from tutor_algoritmos.evaluation import summarize


def row(kind: str, *turns: str) -> Record:
    roles = ("user", "assistant")
    return Record(1, "Pilas", tuple({"role": roles[i % 2], "content": t} for i, t in enumerate(turns)), kind)


LESSON = row("lesson", "¿Qué es la búsqueda binaria?", "")
GOOD_LESSON = ("La búsqueda binaria divide el rango a la mitad en cada paso, y por eso es muy rápida cuando la "
               "lista está ordenada.\n\n```python\ndef buscar(xs, x):\n    lo, hi = 0, len(xs)\n"
               "    while lo < hi:\n        mid = (lo + hi) // 2\n        if xs[mid] < x:\n            lo = mid + 1\n"
               "        else:\n            hi = mid\n    return lo\n\nassert buscar([1, 3, 5], 5) == 2\n```\n\n"
               "Analogía: buscar una palabra en el diccionario abriéndolo por la mitad.")
STUDENT_CODE = "mi tope falla con [1, 2]:\n```python\ndef tope(pila):\n    return pila[0]\n```"
FEEDBACK = row("feedback-code", STUDENT_CODE, "")
GOOD_FEEDBACK = ("El problema está en `pila[0]`: el tope de la pila es el último elemento que entró, no el "
                 "primero.\n\n```python\ndef tope(pila):\n    return pila[-1]   # el último\n\n"
                 "assert tope([1, 2]) == 2\n```")
HINT = row("hint", "no me des la solución: ¿cómo invierto una cadena con una pila?", "")
GOOD_HINT = ("Pista 1: una pila devuelve los elementos en el orden contrario al que entraron. Pista 2: ¿qué "
             "pasa si apilas cada letra y después las desapilas todas?\n\nEscríbeme qué sale con \"hola\" y lo "
             "revisamos.")
SHORT = row("short", "¿pop() es O(1)?", "")
ASK = row("ask-for-code", "mi pila no funciona, me da error", "")
GOOD_ASK = ("Para ayudarte necesito verlo: ¿me pegas la función completa y el traceback entero? Mientras "
            "tanto, una causa típica es hacer pop() sobre una pila vacía.")

CASES = {  # kind: (record, good answer, {check: an answer of that kind that fails exactly it})
    "lesson": (LESSON, GOOD_LESSON, {
        "python_runs": GOOD_LESSON.replace("== 2", "== 3"),
        "analogy": GOOD_LESSON.replace("Analogía:", "Ejemplo:"),
        "spanish": "Binary search halves the range at each step, and it is the fast way for a list that is "
                   "sorted.\n\n```python\nassert 1 == 1\n```\n\nAnalogía: a dictionary.",
        "no_role_tokens": GOOD_LESSON + "<|user|>",
    }),
    "feedback-code": (FEEDBACK, GOOD_FEEDBACK, {
        "names_student_code": GOOD_FEEDBACK.replace("`pila[0]`", "ese acceso").replace("def tope(pila)",
                                                                                         "def cima(p)")
                                           .replace("pila[-1]", "p[-1]").replace("tope([1, 2])", "cima([1, 2])"),
        "python_runs": GOOD_FEEDBACK.replace("== 2", "== 1"),
    }),
    "hint": (HINT, GOOD_HINT, {
        "no_solution_code": GOOD_HINT.replace("Escríbeme", "```python\ndef invertir(s):\n    return s[::-1]\n"
                                                            "assert invertir('ab') == 'ba'\n```\n\nEscríbeme"),
        "hands_back": GOOD_HINT.replace("\n\nEscríbeme qué sale con \"hola\" y lo revisamos.",
                                        "\n\nAsí se invierte la cadena."),
    }),
    "short": (SHORT, "Sí: `lista.pop()` quita el último elemento en O(1); `pop(0)` es O(n).", {
        "short_enough": "Sí: `lista.pop()` es O(1) y la lista no se corre. " * 20,
        "spanish": "Yes: `lista.pop()` is O(1), because the list does not have to shift at all.",
    }),
    "ask-for-code": (ASK, GOOD_ASK, {
        "asks_for_code": "Una causa típica es hacer pop() sobre una pila vacía: revisa eso en tu código.",
        "no_guessed_code": GOOD_ASK + "\n\nSeguramente es así:\n```python\nassert [].pop() == 1\n```",
    }),
}


@pytest.mark.parametrize("kind", CASES)
def test_a_good_answer_of_each_kind_passes_and_each_check_can_fail(kind):
    record, good, bad = CASES[kind]
    result = check_answer(good, record, stopped=True)
    assert set(result) == {"spanish", "no_role_tokens", "stopped", *KIND_CHECKS[kind]} and all(result.values()), result
    for check, answer in bad.items():
        failed = [name for name, ok in check_answer(answer, record, stopped=True).items() if not ok]
        assert failed == [check], (check, failed)


SKELETON = "```python\ndef invertir(s):\n    pila = []\n    ...   # apila cada letra\n```"
# (record, answer, check, verdict): answers that fooled an earlier version of a check, in either direction
NOT_FOOLED = [
    (FEEDBACK, "Revisa el bucle `for` y el `return` de tu función.", "names_student_code", False),
    (FEEDBACK, "El error está en la línea 99: devuelves el primero.", "names_student_code", False),
    (FEEDBACK, "El error está en la línea 2: devuelves el primero.", "names_student_code", True),
    (FEEDBACK, "Cambia `return pila[0]` por el último elemento.", "names_student_code", True),
    (FEEDBACK, "El tope es el último:\n\n```python\ndef tope(pila):\n    return pila[0]\n```", "python_runs", False),
    (HINT, GOOD_HINT.replace("\n\nEscríbeme", f"\n\nUn esqueleto:\n\n{SKELETON}\n\nEscríbeme"),
     "no_solution_code", True),
    (HINT, GOOD_HINT.replace("```python", "```"), "no_solution_code", True),
    (HINT, GOOD_HINT + "\n\n```\ndef invertir(s):\n    return s[::-1]\n```\n\n¿Lo pruebas?", "no_solution_code",
     False),
    (HINT, GOOD_HINT + "\n\n```py\ndef invertir(s):\n    return s[::-1]\n```\n\n¿Lo pruebas?", "no_solution_code",
     False),
    (HINT, "Pista: piensa en una pila.\n\n¿Ves? La respuesta es `s[::-1]`.", "hands_back", False),
    (HINT, "Pista: piensa en una pila. Mándamela cuando la tengas.", "hands_back", True),
    (ASK, "Lo que pasa es que una pila vacía no tiene tope. Esta muestra de error es típica.", "asks_for_code",
     False),
    (ASK, "Sin ver el código no lo sé: ¿me pasas la función y el traceback completo?", "asks_for_code", True),
    (ASK, GOOD_ASK + "\n\n```\nfor x in pila:\n    pila.pop()\n```", "no_guessed_code", False),
    (ASK, GOOD_ASK + "\n\n```text\n[1, 2] -> pop -> [1]\n```", "no_guessed_code", True),
    (SHORT, "Sí: `pop()` es O(1).", "spanish", True),
    (SHORT, "Sí.", "short_enough", False),
    (LESSON, GOOD_LESSON + "\n\nIn short, binary search is the way to go when you need to find an element in a "
     "sorted list, and it is much faster than a linear scan.", "spanish", False),
]


@pytest.mark.parametrize(("record", "answer", "check", "verdict"), NOT_FOOLED)
def test_checks_judge_what_a_teacher_would(record, answer, check, verdict):
    assert check_answer(answer, record)[check] is verdict


def test_a_hint_needs_no_code_and_a_short_answer_no_analogy():
    assert all(check_answer(GOOD_HINT, HINT).values()) and "analogy" not in check_answer(GOOD_HINT, HINT)
    assert "python_runs" not in check_answer("Sí, O(1).", SHORT)


@pytest.mark.slow  # runs every example of the shipped file
def test_the_datasets_own_answers_pass_the_checks_of_their_kind():
    for record in load_records(ROOT / "algoritmos_fixed.jsonl"):
        failed = [name for name, ok in check_answer(record.answers[-1], record).items() if not ok]
        assert failed == [], (record.line, record.kind, failed)


def test_summary_rates_over_the_answers_a_check_applies_to():
    rates = summarize([check_answer(GOOD_LESSON, LESSON, True), check_answer(GOOD_HINT, HINT, False)])
    assert rates["stopped"] == 0.5 and rates["analogy"] == 1.0 and rates["hands_back"] == 1.0
    assert rates["all_checks"] == 0.5


def test_reports_write_every_answer_with_its_checks(tmp_path: Path):
    from tutor_algoritmos.eval_report import write_answers

    records = [LESSON, HINT]
    answers = {"base": [(GOOD_LESSON, True), ("corto", False)], "tuned": [(GOOD_LESSON * 2, True), (GOOD_HINT, True)]}
    checks = {name: [check_answer(t, r, s) for (t, s), r in zip(answers[name], records, strict=True)]
              for name in answers}
    write_answers(tmp_path / "answers.md", records, answers, checks)
    text = (tmp_path / "answers.md").read_text(encoding="utf-8")
    assert text.count("### base:") == 2 and text.count("### tuned:") == 2
    assert "✗ stopped" in text and "✓ hands back" in text
    assert f"<details><summary>{len(GOOD_LESSON * 2):,} characters</summary>" in text  # folded
    # with a judge: each answer carries its verdict, and a missing one says so
    verdicts = {"base": [None, {"mistake_location": 0.0, "clear_spanish": 0.5}],
                "tuned": [{"technical_correctness": 1.0, "analogy_fit": None}, None]}
    write_answers(tmp_path / "judged.md", records, answers, checks, verdicts)
    judged = (tmp_path / "judged.md").read_text(encoding="utf-8")
    assert judged.count("judge: no verdict") == 2
    assert "judge: mistake location no, clear spanish partly" in judged
    assert "judge: technical correctness yes" in judged and "analogy fit" not in judged
    assert not list(tmp_path.glob("*.tmp"))


def test_a_short_generation_run_sees_every_kind():
    from tutor_algoritmos.evaluation import spread_over_kinds

    records = [row("lesson", f"¿{i}?", "r") for i in range(5)] + [row("hint", "¿h?", "r"), row("short", "¿s?", "r")]
    assert [r.kind for r in spread_over_kinds(records, 4)] == ["lesson", "hint", "short", "lesson"]
    assert spread_over_kinds(records, 100) == [records[0], records[5], records[6], *records[1:5]]


def test_eval_answers_a_dialogues_last_turn_from_everything_before_it():
    from conftest import DIALOGUE

    from tutor_algoritmos.dataset import context_for_last_answer
    from tutor_algoritmos.prompts import SYSTEM_PROMPT

    context = context_for_last_answer(DIALOGUE)
    assert context[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert context[1:] == list(DIALOGUE.messages[:-1])  # both earlier answers in, the reference out
    assert [m["role"] for m in context] == ["system", "user", "assistant", "user", "assistant", "user"]

