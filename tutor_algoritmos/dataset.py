"""Read the tutor's JSONL and turn each row into the conversation the model is trained on.

Two row formats, freely mixed in one file (one JSON object per line):

    {"instruction": "[Tema] - pregunta", "output": "respuesta"}                  # the seed's lesson
    {"topic": "Tema", "messages": [{"role": "user", "content": "..."},
                                   {"role": "assistant", "content": "..."}, ...]}  # a dialogue

Either may carry `"kind"`, the tutoring move it teaches (KINDS; `lesson` when absent). The topic
is metadata for the stratified split: the `[Tema] - ` tag never reaches the model, which sees the
question alone, as a student types it into Ollama. The system prompt is added here, never stored.

A UTF-8 BOM, CRLF line endings and blank lines at the end are accepted; anything else that is off
becomes a `Problem` that names the line and the fix, and every problem of the file is collected
in one pass so the user fixes them all at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from tutor_algoritmos.errors import UserError
from tutor_algoritmos.prompts import SYSTEM_PROMPT

LESSON_FIELDS = ("instruction", "output")
DIALOGUE_FIELDS = ("topic", "messages")
# The tutoring move a row teaches; lesson = explanation + commented code + complexity + analogy.
KINDS = ("lesson", "feedback-code", "feedback-reasoning", "hint", "dialogue", "short", "ask-for-code")
TAGGED_QUESTION = re.compile(r"^\[(?P<tag>[^\[\]]+)\] - (?P<question>\S.*)$", re.S)
# Any spelling of a topic tag at the start of a student turn ("[Pilas] - ", "[Pilas]- ", "[Pilas] – ",
# "[Pilas]: "): whatever its dashes, a tag there reaches the tokens. A list like "[3, 1] - " is not one.
LOOSE_TAG = re.compile(r"^\s*\[[^\W\d_][^\[\]\n]{0,59}\]\s*[-–—:]\s*\S")
SEED_EXAMPLE = '{"instruction": "[Tema] - pregunta", "output": "respuesta"}'
DIALOGUE_EXAMPLE = '{"topic": "Tema", "messages": [{"role": "user", ...}, {"role": "assistant", ...}]}'


@dataclass(frozen=True)
class Record:
    line: int
    topic: str
    messages: tuple[dict, ...]  # user, assistant, user, assistant, ...: no system turn
    kind: str = "lesson"

    @classmethod
    def lesson(cls, line: int, instruction: str, output: str, kind: str = "lesson") -> Record:
        """A seed-format row: the tag becomes the topic, the question alone the user turn."""
        match = TAGGED_QUESTION.match(instruction)
        return cls(line, match["tag"].strip(), ({"role": "user", "content": match["question"]},
                                                {"role": "assistant", "content": output}), kind)

    @property
    def question(self) -> str:
        """The student's first message: what duplicates are judged on."""
        return self.messages[0]["content"]

    @property
    def answers(self) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == "assistant"]

    @property
    def student_turns(self) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == "user"]


@dataclass(frozen=True)
class Problem:
    line: int  # 0 = the file as a whole
    what: str
    fix: str

    def format(self, path: Path) -> str:
        where = f"{path}:{self.line}" if self.line else f"{path}"
        return f"{where}: {self.what} — {self.fix}"


def _kind_problem(number: int, obj: dict) -> Problem | None:
    kind = obj.get("kind", "lesson")
    if kind not in KINDS:
        return Problem(number, f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)} (or leave kind out)")
    return None


def _field_problems(number: int, obj: dict, fields: tuple[str, ...], example: str) -> Problem | None:
    missing = [f for f in fields if f not in obj]
    extra = sorted(set(obj) - set(fields) - {"kind"})
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else [])
        return Problem(number, "; ".join(parts), f"keep exactly the fields of {example} (and an optional kind)")
    return None


def _parse_lesson(number: int, obj: dict) -> Record | Problem:
    if problem := _field_problems(number, obj, LESSON_FIELDS, SEED_EXAMPLE):
        return problem
    for field in LESSON_FIELDS:
        if not isinstance(obj[field], str):
            return Problem(number, f"{field} is a {type(obj[field]).__name__}, not a string",
                           f"write {field} as a JSON string")
        if not obj[field].strip():
            return Problem(number, f"{field} is empty", f"write the {field} text")
    if not TAGGED_QUESTION.match(obj["instruction"]):
        return Problem(number, "instruction does not start with '[Tema] - '",
                       "begin it with the topic in brackets, e.g. '[Dijkstra] - ¿Cómo...?'")
    if LOOSE_TAG.match(TAGGED_QUESTION.match(obj["instruction"])["question"]):
        return Problem(number, "the question after '[Tema] - ' starts with another tag",
                       "keep one tag: the model would see the second one as the student's words")
    return _kind_problem(number, obj) or Record.lesson(number, obj["instruction"], obj["output"],
                                                       obj.get("kind", "lesson"))


def _parse_dialogue(number: int, obj: dict) -> Record | Problem:
    if problem := _field_problems(number, obj, DIALOGUE_FIELDS, DIALOGUE_EXAMPLE):
        return problem
    if not isinstance(obj["topic"], str) or not obj["topic"].strip():
        return Problem(number, "topic is missing or empty", 'name the topic, e.g. "topic": "Dijkstra"')
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        return Problem(number, "messages is not a non-empty list",
                       "write the turns as a list of {\"role\": ..., \"content\": ...} objects")
    for i, message in enumerate(messages, start=1):
        expected = "user" if i % 2 else "assistant"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            return Problem(number, f"message {i} is not an object with exactly role and content",
                           '{"role": "user", "content": "..."}')
        if message["role"] == "system":
            return Problem(number, f"message {i} has the system role",
                           "remove it: the pipeline adds the tutor's system prompt to every row")
        if message["role"] != expected:
            return Problem(number, f"message {i} has role {message['role']!r} where {expected!r} belongs",
                           "start with a user turn and alternate user and assistant")
        if not isinstance(message["content"], str) or not message["content"].strip():
            return Problem(number, f"message {i} ({expected}) is empty", "write the turn's text")
    if messages[-1]["role"] != "assistant":
        return Problem(number, "the last message is the student's",
                       "end with the tutor's answer: the model learns from assistant turns")
    for i, message in enumerate(messages[::2], start=0):
        if LOOSE_TAG.match(message["content"]):
            return Problem(number, f"message {2 * i + 1} starts with a '[Tema] - ' tag",
                           "put the topic in \"topic\" only: students do not type tags")
    return _kind_problem(number, obj) or Record(number, obj["topic"].strip(), tuple(messages),
                                                obj.get("kind", "lesson"))


def _parse_line(number: int, raw: bytes) -> Record | Problem:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Problem(number, f"not valid UTF-8 (byte {err.start})", "save the file as UTF-8")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return Problem(number, f"invalid JSON: {err.msg} at column {err.colno}",
                       f"write one complete object per line: {SEED_EXAMPLE} or {DIALOGUE_EXAMPLE}")
    if not isinstance(obj, dict):
        return Problem(number, f"a JSON {type(obj).__name__} instead of an object",
                       f"write one object per line: {SEED_EXAMPLE} or {DIALOGUE_EXAMPLE}")
    return _parse_dialogue(number, obj) if "messages" in obj else _parse_lesson(number, obj)


def read_jsonl(path: Path) -> tuple[list[Record], list[Problem]]:
    """Every well-formed record and every problem, in file order."""
    if not path.is_file():
        raise UserError(f"{path}: no such file — pass an existing JSONL file (DATA=... in make)")
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():  # blank lines at the end are fine
        lines.pop()
    if not lines:
        return [], [Problem(0, "the file is empty", "add one JSON object per line")]
    records, problems = [], []
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            problems.append(Problem(number, "blank line", "remove it"))
            continue
        parsed = _parse_line(number, raw)
        (records if isinstance(parsed, Record) else problems).append(parsed)
    return records, problems


def load_records(path: Path) -> list[Record]:
    """The records, or a UserError listing every structural problem of the file."""
    records, problems = read_jsonl(path)
    if problems:
        raise UserError("\n".join(p.format(path) for p in problems))
    return records


def with_system(messages, system_prompt: str = SYSTEM_PROMPT) -> list[dict]:
    return [{"role": "system", "content": system_prompt}, *messages]


def to_conversation(record: Record, system_prompt: str = SYSTEM_PROMPT) -> dict:
    """TRL's conversational format; with assistant_only_loss every assistant turn is learned."""
    return {"messages": with_system(record.messages, system_prompt)}


def context_for_last_answer(record: Record, system_prompt: str = SYSTEM_PROMPT) -> list[dict]:
    """System prompt and every turn before the last answer: what the model answers from in eval."""
    return with_system(record.messages[:-1], system_prompt)


def token_lengths(records: list[Record], tokenizer) -> list[int]:
    """Tokens of each example exactly as training sees it: system + every turn + end of turn."""
    return [len(tokenizer.apply_chat_template(to_conversation(r)["messages"], tokenize=True,
                                              return_dict=True)["input_ids"]) for r in records]


def too_long(records: list[Record], lengths: list[int], max_length: int) -> list[tuple[Record, int]]:
    """(record, tokens) for every example training would have to cut at max_length (lengths from token_lengths)."""
    return [(r, n) for r, n in zip(records, lengths, strict=True) if n > max_length]


def _stable_key(record: Record) -> str:
    # For a seed row this hashes its original instruction, so a seed-format file splits as before.
    text = f"[{record.topic}] - " + "\n".join(record.student_turns)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_by_topic(records: list[Record], eval_fraction: float) -> tuple[list[Record], list[Record]]:
    """Deterministic held-out split, stratified by topic.

    Within each topic, records are ordered by a hash of their student turns; record k of a topic
    of size n gets the position (k + 0.5) / n, so taking the round(N * fraction) smallest positions
    spreads the held-out set over the topics in proportion to their size. No RNG: the same file
    always gives the same split, on every machine.
    """
    if not 0 <= eval_fraction < 1:
        raise UserError(f"eval fraction {eval_fraction} must be in [0, 1)")
    by_topic: dict[str, list[Record]] = {}
    for record in records:
        by_topic.setdefault(record.topic, []).append(record)
    ranked = []
    for group in by_topic.values():
        group.sort(key=_stable_key)
        ranked += [((k + 0.5) / len(group), _stable_key(r), r) for k, r in enumerate(group)]
    ranked.sort(key=lambda item: item[:2])
    n_eval = round(len(records) * eval_fraction)
    held_out = {id(r) for _, _, r in ranked[:n_eval]}
    train = [r for r in records if id(r) not in held_out]
    evaluation = [r for r in records if id(r) in held_out]
    return train, evaluation


def by_kind(records: list[Record]) -> dict[str, list[int]]:
    """Row indices per kind, in KINDS order, for the kinds present."""
    groups = {kind: [i for i, r in enumerate(records) if r.kind == kind] for kind in KINDS}
    return {kind: rows for kind, rows in groups.items() if rows}


def count_by_kind(records: list[Record]) -> str:
    """'lesson 30, hint 3, ...' in KINDS order: how the split and training's log report a set."""
    return ", ".join(f"{kind} {len(rows)}" for kind, rows in by_kind(records).items())
