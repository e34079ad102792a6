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
# What a generated answer might present as code: ```python, ```py, ```python3 or an unlabelled fence
# (a ```text block holds traces and tables, and an unlabelled one counts only if it parses as Python).
CODE_FENCE = re.compile(r"```(python3?|py)?[ \t]*\r?\n(.*?)```", re.S)
ANY_BLOCK = re.compile(r"```.*?```", re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
ANALOGY = re.compile(r"(^|\n)\s*(\*\*)?Analogía:")
ROLE_TOKEN = re.compile(r"<\|[a-z_]+\|>")
SHORT_MIN_CHARS = 60   # below this a "short" answer is a bare yes/no, without the reason a teacher gives
SHORT_MAX_CHARS = 700  # a `short` answer: the question's answer and one caveat or tiny example
# Frequent function words that tell Spanish prose from English prose.
SPANISH = frozenset("el la los las de del que y en un una es por con para como se su al lo más pero "
                    "este esta cada cuando donde porque también entonces no si sí".split())
ENGLISH = frozenset("the of and to in is that for it as with this are be by on an which when you "
                    "your can".split())
DRIFT_MIN_WORDS = 8  # a paragraph this long with more English than Spanish function words has drifted
# A hint hands the next step back: a question, or an invitation to try and report (with the clitics
# Spanish glues on: "mándamela", "pruébalo").
CLITIC = r"(me|te|lo|la|los|las|melo|mela|melos|melas)?"
NEXT_STEP = re.compile(rf"\b(escr[ií]be{CLITIC}|pru[eé]ba{CLITIC}|intenta{CLITIC}|dime|cu[eé]ntame|"
                       rf"m[aá]nda{CLITIC}|haz{CLITIC}|llena{CLITIC}|dibuja{CLITIC}|anota{CLITIC}|"
                       rf"revisa{CLITIC}|piensa|calcula{CLITIC}|tu turno|siguiente paso|te toca)\b", re.I)
# Asking for the code: an imperative or a question addressed to the student ("pégame", "¿me pasas…?",
# "necesito ver"), never a bare third person ("lo que pasa", "esta muestra"), and about their code.
ASKS_FOR_CODE = re.compile(rf"\b(p[eé]ga{CLITIC}|comp[aá]rte{CLITIC}|mu[eé]stra(me|melo|mela)|"
                           rf"p[aá]sa(me|melo|mela)|env[ií]a{CLITIC}|m[aá]nda(me|melo|mela)|necesito ver|"
                           rf"tengo que ver|me (pegas|pasas|compartes|muestras|mandas|env[ií]as))\b", re.I)
ASK_WINDOW = 200  # characters around the request where "código", "función" or "traceback" must appear
QUESTION_MIN_WORDS = 4
STUDENT_WORK = re.compile(r"c[oó]digo|funci[oó]n|traceback|programa|implementaci[oó]n|versi[oó]n|"
                          r"error|l[ií]nea|salida", re.I)
SOLUTION_LINES = 6  # a code block this long, or one that defines a finished function, solves the exercise
# A skeleton with blanks to fill is a hint, not a solution.
PLACEHOLDER = re.compile(r"^\s*((\.\.\.|pass|_{2,})\s*(#.*)?|#\s*(tu c[oó]digo|completa|aqu[ií]|todo)\b.*)$",
                         re.I | re.M)


def has_analogy(text: str) -> bool:
    return ANALOGY.search(text) is not None


def _function_words(text: str) -> tuple[int, int, int]:
    words = re.findall(r"[a-záéíóúñü]+", text.lower())
    return sum(w in SPANISH for w in words), sum(w in ENGLISH for w in words), len(words)


def is_spanish(text: str) -> bool:
    """Spanish prose (outside code), and no paragraph of it drifted into English. A terse answer
    ("Sí: `pop()` es O(1).") needs fewer markers than a lesson."""
    prose = ANY_BLOCK.sub(" ", text)
    es, en, words = _function_words(prose)
    if not (es > 2 * en and es >= min(3, max(1, words // 6))):
        return False
    for paragraph in prose.split("\n\n"):
        p_es, p_en, p_words = _function_words(paragraph)
        if p_words >= DRIFT_MIN_WORDS and p_en >= 3 and p_en > p_es:
            return False
    return True


def python_runs(text: str) -> bool:
    """Has a ```python block, every block runs in the sandbox, and at least one checks with assert.
    A fix too: a block that merely runs says nothing about fixing anything (the demo's tuned model
    "fixed" quitar_pares with list(set(lista)), which runs and removes no even number)."""
    blocks = PYTHON_BLOCK.findall(text)
    return bool(blocks) and any("assert" in b for b in blocks) and all(run_python(b).ok for b in blocks)


def code_blocks(text: str) -> list[str]:
    """Every block the answer presents as Python: labelled python/py, or unlabelled and parsing."""
    blocks = []
    for label, body in CODE_FENCE.findall(text):
        if label:
            blocks.append(body)
            continue
        try:
            tree = ast.parse(body)
        except SyntaxError:
            continue
        if any(isinstance(n, (ast.FunctionDef, ast.For, ast.While, ast.Assign, ast.Return, ast.Assert))
               for n in ast.walk(tree)):
            blocks.append(body)
    return blocks


def student_blocks(record: Record) -> list[str]:
    return [code for turn in record.student_turns for code in PYTHON_BLOCK.findall(turn)]


def student_identifiers(record: Record) -> set[str]:
    """Names the student's own code defines or uses (functions, variables, attributes)."""
    names = set()
    for code in student_blocks(record):
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
    return {n for n in names if len(n) > 1 and not _generic(n)}


def _generic(word: str) -> bool:
    """A keyword or builtin (`for`, `return`, `len`): in anybody's code, so quoting it locates nothing."""
    return keyword.iskeyword(word) or word in dir(builtins)


def _student_lines(record: Record) -> set[int]:
    """Line numbers the student can be pointed at: those of their code, and any in their traceback."""
    numbers = {n for code in student_blocks(record) for n in range(1, code.count("\n") + 1)}
    for turn in record.student_turns:
        numbers.update(int(n) for n in re.findall(r"\bline (\d+)", turn))
    return numbers


def names_student_code(text: str, record: Record) -> bool:
    """The answer points into the student's code: a line number that exists there, or a piece of that
    code quoted as `code` in the prose (an expression like `a[j + 1]` or one of its names). A corrected
    block repeats every name anyway, and a name like `pila` is also a Spanish word, so only quotes
    count; quoting a bare keyword or builtin (`for`, `len`) locates nothing."""
    prose = ANY_BLOCK.sub(" ", text)
    lines = _student_lines(record)
    if any(int(n) in lines for n in re.findall(r"\bl[ií]neas? (\d+)", prose, re.I)):
        return True
    code = "\n".join(student_blocks(record))
    names = student_identifiers(record)
    for span in (s.strip() for s in INLINE_CODE.findall(prose)):
        if _generic(span):
            continue
        if (len(span) >= 3 and span in code) or any(
                re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", span) for name in names):
            return True
    return False


def gives_solution_code(text: str) -> bool:
    """A code block that solves the exercise: a finished function, or SOLUTION_LINES lines of code.
    A skeleton whose body is left as `...`, `pass` or `# tu código` is a hint."""
    for block in code_blocks(text):
        if PLACEHOLDER.search(block):
            continue
        lines = [line for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
        if re.search(r"^\s*def ", block, re.M) or len(lines) >= SOLUTION_LINES:
            return True
    return False


def hands_back(text: str) -> bool:
    """The last paragraph outside code hands the student a next step: an invitation to try and report
    ("haz la tabla y mándamela"), or a real question. A bare "¿Ves?" before the answer is given
    away is rhetorical, so a question needs a few words to count."""
    paragraphs = [p for p in ANY_BLOCK.sub("", text).split("\n\n") if p.strip()]
    if not paragraphs:
        return False
    for sentence in re.split(r"(?<=[.!?])\s+", paragraphs[-1].strip()):
        if NEXT_STEP.search(sentence.replace("?", "")) or (
                sentence.rstrip().endswith("?") and len(sentence.split()) >= QUESTION_MIN_WORDS):
            return True
    return False


def asks_for_code(text: str) -> bool:
    """A request addressed to the student ("pégame", "¿me pasas…?") with their work named near it."""
    return any(STUDENT_WORK.search(text, max(0, m.start() - ASK_WINDOW), m.end() + ASK_WINDOW)
               for m in ASKS_FOR_CODE.finditer(text))


CHECKS = {
    "spanish": lambda text, record: is_spanish(text),
    "no_role_tokens": lambda text, record: ROLE_TOKEN.search(text) is None,
    "python_runs": lambda text, record: python_runs(text),
    "analogy": lambda text, record: has_analogy(text),
    "names_student_code": names_student_code,
    "no_solution_code": lambda text, record: not gives_solution_code(text),
    "hands_back": lambda text, record: hands_back(text),
    "short_enough": lambda text, record: SHORT_MIN_CHARS <= len(text.strip()) <= SHORT_MAX_CHARS,
    "asks_for_code": lambda text, record: asks_for_code(text),
    "no_guessed_code": lambda text, record: not code_blocks(text),
}
# Every answer: Spanish with no paragraph drifted into English, no role tokens, and (from generation)
# stopped on its own end-of-turn token.
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
