"""What a teacher can decide from the text of an answer alone, per kind of tutoring move.

The one home of the answer patterns: a ```python block, an `Analogía:` paragraph, Spanish rather
than English, role tokens, a short answer's limit. check_data.py applies them to the dataset's own
answers; evaluation.py to generated ones, with the checks of each row's kind (KIND_CHECKS): a good
hint has no solution code, a good short answer has no analogy, and neither is marked down for it.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re

from tutor_algoritmos.dataset import Record
from tutor_algoritmos.sandbox import run_python

PYTHON_BLOCK = re.compile(r"```python[ \t]*\r?\n(.*?)```", re.S)
ANY_BLOCK = re.compile(r"```.*?```", re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
ANALOGY = re.compile(r"(^|\n)\s*(\*\*)?Analogía:")
ROLE_TOKEN = re.compile(r"<\|[a-z_]+\|>")
SHORT_MAX_CHARS = 700  # a `short` answer: the question's answer and one caveat or tiny example
# Frequent function words that tell Spanish prose from English prose.
SPANISH = frozenset("el la los las de del que y en un una es por con para como se su al lo más pero "
                    "este esta cada cuando donde porque también entonces".split())
ENGLISH = frozenset("the of and to in is that for it as with this are be by on an which when".split())
# A hint hands the next step back: a question, or an invitation to try and report.
NEXT_STEP = re.compile(r"\?|\b(escr[ií]be(me)?|prueba|intenta|dime|cu[eé]ntame|m[aá]nda(me)?|haz|llena|"
                       r"dibuja|anota|revisa|piensa|tu turno|siguiente paso)\b", re.I)
ASKS_FOR_CODE = re.compile(r"\b(p[eé]ga(me|lo|la)?|comp[aá]rte(me|lo)?|mu[eé]stra(me)?|p[aá]sa(me)?|"
                           r"env[ií]a(me)?|m[aá]nda(me)?|necesito ver|me pegas|me pasas|me compartes|"
                           r"me muestras)\b", re.I)
SOLUTION_LINES = 6  # a python block this long, or one that defines a function, solves the exercise


def has_analogy(text: str) -> bool:
    return ANALOGY.search(text) is not None


def is_spanish(text: str) -> bool:
    words = re.findall(r"[a-záéíóúñü]+", ANY_BLOCK.sub(" ", text).lower())
    es, en = sum(w in SPANISH for w in words), sum(w in ENGLISH for w in words)
    return es > 2 * en and es >= 3


def python_runs(text: str) -> bool:
    """Has a ```python block, every block runs in the sandbox, and at least one checks with assert."""
    blocks = PYTHON_BLOCK.findall(text)
    return bool(blocks) and any("assert" in b for b in blocks) and all(run_python(b).ok for b in blocks)


def student_identifiers(record: Record) -> set[str]:
    """Names the student's own code defines or uses (functions, variables, attributes)."""
    names = set()
    for turn in record.student_turns:
        for code in PYTHON_BLOCK.findall(turn):
            try:
                tree = ast.parse(code)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute):
                    names.add(node.attr)
                elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.arg):
                    names.add(node.arg)
    return {n for n in names if len(n) > 1 and n not in dir(builtins) and not keyword.iskeyword(n)}


def names_student_code(text: str, record: Record) -> bool:
    """The answer points into the student's code: a line number, or a piece of that code quoted as
    `code` in the prose (an expression like `a[j + 1]` or one of its names). A corrected block repeats
    every name anyway, and a name like `pila` is also a Spanish word, so only quotes count."""
    prose = ANY_BLOCK.sub(" ", text)
    if re.search(r"\bl[ií]nea \d+", prose, re.I):
        return True
    student_code = "\n".join(code for turn in record.student_turns for code in PYTHON_BLOCK.findall(turn))
    names = student_identifiers(record)
    for span in (s.strip() for s in INLINE_CODE.findall(prose)):
        if (len(span) >= 3 and span in student_code) or any(
                re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", span) for name in names):
            return True
    return False


def gives_solution_code(text: str) -> bool:
    for block in PYTHON_BLOCK.findall(text):
        lines = [line for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
        if re.search(r"^\s*def ", block, re.M) or len(lines) >= SOLUTION_LINES:
            return True
    return False


def hands_back(text: str) -> bool:
    """The last paragraph outside code asks a question or hands the student a next step."""
    paragraphs = [p for p in ANY_BLOCK.sub("", text).split("\n\n") if p.strip()]
    return bool(paragraphs) and NEXT_STEP.search(paragraphs[-1]) is not None


CHECKS = {
    "spanish": lambda text, record: is_spanish(text),
    "no_role_tokens": lambda text, record: ROLE_TOKEN.search(text) is None,
    "python_runs": lambda text, record: python_runs(text),
    "analogy": lambda text, record: has_analogy(text),
    "names_student_code": names_student_code,
    "no_solution_code": lambda text, record: not gives_solution_code(text),
    "hands_back": lambda text, record: hands_back(text),
    "short_enough": lambda text, record: 0 < len(text.strip()) <= SHORT_MAX_CHARS,
    "asks_for_code": lambda text, record: ASKS_FOR_CODE.search(text) is not None,
    "no_guessed_code": lambda text, record: not PYTHON_BLOCK.search(text),
}
# Every answer: Spanish, no role tokens, and (from generation) stopped on its own end-of-turn token.
COMMON = ("spanish", "no_role_tokens")
KIND_CHECKS = {
    "lesson": ("python_runs", "analogy"),
    "feedback-code": ("names_student_code", "python_runs"),
    "feedback-reasoning": (),
    "hint": ("no_solution_code", "hands_back"),
    "dialogue": (),
    "short": ("short_enough",),
    "ask-for-code": ("asks_for_code", "no_guessed_code"),
}


def check_answer(text: str, record: Record, stopped: bool | None = None) -> dict[str, bool]:
    """Every check of the record's kind on one answer; `stopped` joins them when it is known."""
    result = {name: bool(CHECKS[name](text, record)) for name in (*COMMON, *KIND_CHECKS[record.kind])}
    if stopped is not None:
        result["stopped"] = stopped
    return result
