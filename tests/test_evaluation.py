"""Per-answer scores of make eval, on answers written to pass or fail each check."""

from __future__ import annotations

from tutor_algoritmos.evaluation import score_answer, summarize

GOOD = ("La búsqueda binaria divide el rango a la mitad en cada paso, y por eso es muy rápida cuando la "
        "lista está ordenada. Es una idea que se usa en muchos problemas de la vida real.\n\n```python\n"
        "def buscar(xs, x):\n    lo, hi = 0, len(xs)\n    while lo < hi:\n        mid = (lo + hi) // 2\n"
        "        if xs[mid] < x:\n            lo = mid + 1\n        else:\n            hi = mid\n    return lo\n\n"
        "assert buscar([1, 3, 5], 5) == 2\n```\n\nAnalogía: buscar una palabra en el diccionario.")


def test_a_good_answer_passes_every_check():
    score = score_answer(GOOD, stopped=True)
    assert score.all_ok, score


def test_each_check_can_fail():
    assert not score_answer(GOOD, stopped=False).stopped
    assert not score_answer(GOOD + "<|user|>", stopped=True).no_role_tokens
    assert not score_answer(GOOD.replace("Analogía", "Ejemplo"), stopped=True).analogy
    english = ("Binary search splits the range in half at each step and it is fast for the sorted list "
               "that is given to the function in this case. " * 3)
    assert not score_answer(english, stopped=True).spanish
    broken = GOOD.replace("def buscar(xs, x):", "def buscar(xs, x)")
    assert (score_answer(broken, True).python_parses, score_answer(broken, True).python_runs) == (False, False)
    failing = GOOD.replace("== 2", "== 3")
    assert (score_answer(failing, True).python_parses, score_answer(failing, True).python_runs) == (True, False)
    assert not score_answer("Sí.", stopped=True).length_ok


def test_summary_rates():
    rates = summarize([score_answer(GOOD, True), score_answer(GOOD, False)])
    assert rates["stopped"] == 0.5 and rates["analogy"] == 1.0 and rates["all_checks"] == 0.5
