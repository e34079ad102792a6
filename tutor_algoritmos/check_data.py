"""Validate a tutor dataset: every rule, every line, one run.

    python -m tutor_algoritmos.check_data algoritmos_fixed.jsonl
    python -m tutor_algoritmos.check_data mine.jsonl --no-exec        # skip running the examples
    python -m tutor_algoritmos.check_data data.jsonl --tokenizer build/tiny-phi3 --max-length 2048

Per row, in either format (tutor_algoritmos/dataset.py): the structure (fields, roles that
alternate from the student to the tutor, no empty turn, a topic, a known kind); every ```python
block of every tutor turn runs in the sandbox and its asserts pass; a `lesson` has code and a
paragraph that starts with `Analogía:` in each answer; a `feedback-code` row shows the student's
code (which must parse, unless the lesson is about its SyntaxError) or traceback; a `short` answer
stays within SHORT_MAX_CHARS; an `ask-for-code` student pasted no code; a `dialogue` has at least
two student turns; the token length is within max_length; and the opening question is not an
exact or near duplicate of another row's, across both formats. Problems print as
`FILE:LINE: what — fix`; the exit status is 1 if there is any.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import unicodedata
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from difflib import SequenceMatcher
from pathlib import Path

from tutor_algoritmos.answer_checks import PYTHON_BLOCK, SHORT_MAX_CHARS, has_analogy, student_blocks
from tutor_algoritmos.dataset import KINDS, Problem, Record, read_jsonl, token_lengths, too_long
from tutor_algoritmos.errors import UserError, run_cli
from tutor_algoritmos.recipe import MAX_LENGTH, max_length_of
from tutor_algoritmos.sandbox import CPU_SECONDS, WALL_SECONDS, run_python

TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\b[A-Z][a-zA-Z]*Error\b")
# A near duplicate is the same question reworded: the normalised texts are >= 85% alike (difflib)
# AND no content word was swapped for another (one question's content words contain the other's,
# or they share >= 80% of them). The second test keeps apart questions that differ in the one word
# that matters ("¿Cuándo conviene el ordenamiento por inserción / por selección?": 94% alike as
# text, but "inserción" became "selección"), while "¿Qué es (exactamente) una pila?" stays a duplicate.
NEAR_DUPLICATE_TEXT = 0.85
NEAR_DUPLICATE_WORDS = 0.8
STOPWORDS = frozenset("""a al algo como con de del el en entre es esta este hay la las lo los me mi
mis o para por que se si sin su sus te tu un una uno unos unas y ya""".split())

# Question type by wording; the first rule that matches wins (lower-cased question).
QUESTION_TYPES = (
    ("traza", ("paso a paso", "traza", "simula")),
    ("depuración", ("por qué mi", "mi código", "no funciona", "error", "falla", "bug", "se cuelga")),
    ("comparación", (" vs ", "diferencia", "compara", "mejor que")),
    ("complejidad", ("complejidad", "o(", "cuánto tarda", "cuánta memoria", "cuánto cuesta")),
    ("cuándo usar", ("cuándo", "en qué casos", "conviene")),
    ("código", ("código", "implement", "escribe", "muéstrame", "programa")),
    ("concepto", ("qué es", "qué significa", "explica", "cómo funciona", "qué son", "para qué")),
)


def question_type(question: str) -> str:
    low = question.lower()
    return next((name for name, keys in QUESTION_TYPES if any(k in low for k in keys)), "otro")


def normalise(question: str) -> str:
    """Lower case, no accents or punctuation, single spaces: the text duplicates are judged on."""
    text = unicodedata.normalize("NFKD", question.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def content_problems(record: Record) -> list[Problem]:
    """The rules of the row's kind; code in any tutor turn is checked by execution_problems."""
    line, problems = record.line, []
    if record.kind == "lesson":
        for n, answer in enumerate(record.answers, start=1):
            turn = f"answer {n}" if len(record.answers) > 1 else "the answer"
            if not PYTHON_BLOCK.search(answer):
                problems.append(Problem(line, f"{turn} has no ```python block",
                                        "add a runnable example that ends with assert checks"))
            if not has_analogy(answer):
                problems.append(Problem(line, f"{turn} has no paragraph that starts with 'Analogía:'",
                                        "end the lesson with an everyday analogy introduced by 'Analogía:'"))
    elif record.kind == "feedback-code":
        first = record.student_turns[0]
        if not PYTHON_BLOCK.search(first) and not TRACEBACK.search(first):
            problems.append(Problem(line, "feedback-code: the student's first message shows no code or traceback",
                                    "paste the student's code in a ```python block (or the traceback)"))
        conversation = "".join(m["content"] for m in record.messages)
        for code in student_blocks(record):
            try:
                ast.parse(code)
            except SyntaxError as err:  # IndentationError and TabError included
                if type(err).__name__ not in conversation:  # unless the lesson is about that very error
                    problems.append(Problem(line, f"the student's code does not parse ({err.msg}, line "
                                                  f"{err.lineno})", "paste code that runs, or make the "
                                            "lesson about that SyntaxError"))
    elif record.kind == "short":
        for answer in record.answers:
            if len(answer) > SHORT_MAX_CHARS:
                problems.append(Problem(line, f"a short answer of {len(answer)} characters (> {SHORT_MAX_CHARS})",
                                        "cut it to the point, or give the row another kind"))
    elif record.kind == "ask-for-code" and PYTHON_BLOCK.search(record.student_turns[0]):
        problems.append(Problem(line, "ask-for-code: the student already pasted code",
                                "make it feedback-code, or drop the code so the tutor has to ask for it"))
    elif record.kind == "dialogue" and len(record.student_turns) < 2:
        problems.append(Problem(line, "a dialogue with one student turn",
                                "add the student's follow-up and the tutor's reply, or give the row another kind"))
    return problems


def duplicate_problems(records: list[Record]) -> list[Problem]:
    problems, seen = [], {}
    normalised = [(r, normalise(r.question)) for r in records]
    for r, text in normalised:
        if text in seen:
            problems.append(Problem(r.line, f"same question as line {seen[text]}", "remove one or ask something else"))
        else:
            seen[text] = r.line
    unique = [(r, t, set(t.split()) - STOPWORDS) for r, t in normalised if seen[t] == r.line]
    for i, (a, ta, wa) in enumerate(unique):
        for b, tb, wb in unique[i + 1:]:
            if not (wa <= wb or wb <= wa or len(wa & wb) >= NEAR_DUPLICATE_WORDS * len(wa | wb)):
                continue
            if (ratio := SequenceMatcher(None, ta, tb, autojunk=False).ratio()) >= NEAR_DUPLICATE_TEXT:
                problems.append(Problem(b.line, f"near duplicate of line {a.line} ({ratio:.0%} alike)",
                                        "ask a different question or remove one"))
    return problems


def execution_problems(records: list[Record], workers: int, cpu_seconds: int) -> list[Problem]:

    jobs = [(r, n, code) for r in records
            for n, code in enumerate((c for a in r.answers for c in PYTHON_BLOCK.findall(a)), start=1)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: run_python(job[2], cpu_seconds, max(WALL_SECONDS, 2 * cpu_seconds)), jobs))
    problems = []
    for (record, n, code), result in zip(jobs, results, strict=True):
        if not result.ok:
            problems.append(Problem(record.line, f"python block {n} {result.problem}",
                                    "fix the example so it runs on its own, standard library only"))
        elif "assert" not in code:
            problems.append(Problem(record.line, f"python block {n} checks nothing",
                                    "end it with assert lines that test what the text claims"))
    return problems


# Without the base model's tokenizer, a row is certainly over max_length when its characters
# exceed this many per allowed token: no tokenizer we know packs Spanish prose and Python that
# tight (this dataset's rows measure at most 2.4 characters per token with Phi-3.5's tokenizer and
# 2.2 with SmolLM2's, system prompt included). Rows below the bound may still be over;
# train_lora.py measures them exactly before loading the model.
SAFE_CHARS_PER_TOKEN = 6


def offline_tokenizer(name: str, llama_cpp_dir: Path | None):
    """The tokenizer to measure with: the model's own, or Phi-3.5's rebuilt from llama.cpp's vocabulary."""
    import tempfile

    from transformers import AutoTokenizer

    from tutor_algoritmos import recipe
    from tutor_algoritmos.hardware import load_tokenizer, loadable_offline_or_online

    if loadable_offline_or_online(name):
        return load_tokenizer(name)
    vocab = llama_cpp_dir / "models" / "ggml-vocab-phi-3.gguf" if llama_cpp_dir else None
    if name == recipe.BASE_MODEL and vocab and vocab.is_file():
        from tutor_algoritmos.phi3_tokenizer import write_phi3_tokenizer

        with tempfile.TemporaryDirectory(prefix="phi35-tokenizer-") as folder:
            write_phi3_tokenizer(vocab, Path(folder))  # byte for byte the real one (test_phi3_tokenizer)
            return AutoTokenizer.from_pretrained(folder)
    return None


def length_problems(records: list[Record], tokenizer_name: str, max_length: int,
                    llama_cpp_dir: Path | None = None) -> list[Problem]:
    fix = "shorten the row (or raise --max_length in TRAIN_ARGS, which check-data follows)"
    tokenizer = offline_tokenizer(tokenizer_name, llama_cpp_dir)
    if tokenizer is None:
        print(f"note: tokenizer {tokenizer_name} is not available offline; token lengths are bounded by "
              f"characters (> {SAFE_CHARS_PER_TOKEN} per token is certainly too long) and measured exactly "
              "by train_lora.py", file=sys.stderr)
        return [Problem(r.line, f"{chars} characters, certainly over max_length {max_length} tokens", fix)
                for r in records
                if (chars := sum(len(m["content"]) for m in r.messages)) > SAFE_CHARS_PER_TOKEN * max_length]
    return [Problem(r.line, f"{n} tokens with the system prompt and chat template, over max_length {max_length}",
                    fix) for r, n in too_long(records, token_lengths(records, tokenizer), max_length)]


def check(path: Path, execute: bool = True, tokenizer: str | None = None, max_length: int = MAX_LENGTH,
          workers: int = 2, cpu_seconds: int = CPU_SECONDS,
          llama_cpp_dir: Path | None = None) -> tuple[list[Record], list[Problem]]:
    records, problems = read_jsonl(path)
    for record in records:
        problems += content_problems(record)
    problems += duplicate_problems(records)
    if execute:
        problems += execution_problems(records, workers, cpu_seconds)
    if tokenizer:
        problems += length_problems(records, tokenizer, max_length, llama_cpp_dir)
    return records, sorted(problems, key=lambda p: p.line)


def summary(records: list[Record]) -> str:
    topics = Counter(r.topic for r in records)
    kinds = Counter(r.kind for r in records)
    types = Counter(question_type(r.question) for r in records if r.kind == "lesson")
    turns = sum(len(r.answers) for r in records)
    lines = [f"{len(records)} entries, {len(topics)} topics, {turns} tutor turns"]
    lines += [f"  {count:4d}  {topic}" for topic, count in sorted(topics.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines.append("kinds: " + ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS if kinds[kind]))
    lines.append("lesson question types: " + ", ".join(f"{t} {c}" for t, c in types.most_common()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the JSONL file to check")
    parser.add_argument("--no-exec", action="store_true", help="do not run the python examples")
    parser.add_argument("--tokenizer", help="model folder or hub id whose tokenizer measures length")
    parser.add_argument("--max-length", type=int, help="token limit (default: the one --train-args sets)")
    parser.add_argument("--train-args", default="", help="the run's TRAIN_ARGS, for its --max_length")
    parser.add_argument("--llama-cpp-dir", type=Path, help="for Phi-3.5's tokenizer when the hub is out of reach")
    parser.add_argument("--workers", type=int, default=2, help="examples run in parallel")
    parser.add_argument("--cpu-seconds", type=int, default=CPU_SECONDS, help="CPU limit per example")
    parser.add_argument("--quiet", action="store_true", help="print problems only, no summary")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        raise UserError(f"{args.data}: no such file — pass an existing JSONL file (DATA=... in make)")
    max_length = args.max_length or max_length_of(args.train_args)
    records, problems = check(args.data, not args.no_exec, args.tokenizer, max_length, args.workers,
                              args.cpu_seconds, args.llama_cpp_dir)
    if not args.quiet:
        print(summary(records))
    for problem in problems:
        print(problem.format(args.data), file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.data}", file=sys.stderr)
        return 1
    print(f"{args.data}: OK ({len(records)} entries{'' if not args.no_exec else ', examples not run'})")
    return 0


if __name__ == "__main__":
    run_cli(lambda: sys.exit(main()))
