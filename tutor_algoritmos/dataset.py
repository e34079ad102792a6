"""Read `algoritmos_fixed.jsonl` and turn it into the conversations the model is trained on.

One JSON object per line: {"instruction": "[Tema] - pregunta", "output": "respuesta"}.
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

FIELDS = ("instruction", "output")
TAGGED_QUESTION = re.compile(r"^\[(?P<tag>[^\[\]]+)\] - (?P<question>\S.*)$", re.S)


@dataclass(frozen=True)
class Record:
    line: int
    instruction: str
    output: str

    @property
    def tag(self) -> str:
        return TAGGED_QUESTION.match(self.instruction)["tag"].strip()

    @property
    def question(self) -> str:
        return TAGGED_QUESTION.match(self.instruction)["question"]


@dataclass(frozen=True)
class Problem:
    line: int  # 0 = the file as a whole
    what: str
    fix: str

    def format(self, path: Path) -> str:
        where = f"{path}:{self.line}" if self.line else f"{path}"
        return f"{where}: {self.what} — {self.fix}"


def _parse_line(number: int, raw: bytes) -> Record | Problem:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Problem(number, f"not valid UTF-8 (byte {err.start})", "save the file as UTF-8")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return Problem(number, f"invalid JSON: {err.msg} at column {err.colno}",
                       'write one complete object per line: {"instruction": "...", "output": "..."}')
    if not isinstance(obj, dict):
        return Problem(number, f"a JSON {type(obj).__name__} instead of an object",
                       'write one object per line: {"instruction": "...", "output": "..."}')
    missing = [f for f in FIELDS if f not in obj]
    extra = sorted(set(obj) - set(FIELDS))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else [])
        return Problem(number, "; ".join(parts), "keep exactly the fields instruction and output")
    for field in FIELDS:
        if not isinstance(obj[field], str):
            return Problem(number, f"{field} is a {type(obj[field]).__name__}, not a string",
                           f"write {field} as a JSON string")
        if not obj[field].strip():
            return Problem(number, f"{field} is empty", f"write the {field} text")
    if not TAGGED_QUESTION.match(obj["instruction"]):
        return Problem(number, "instruction does not start with '[Tema] - '",
                       "begin it with the topic in brackets, e.g. '[Dijkstra] - ¿Cómo...?'")
    return Record(number, obj["instruction"], obj["output"])


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


def prompt_messages(instruction: str, system_prompt: str = SYSTEM_PROMPT) -> list[dict]:
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": instruction}]


def to_prompt_completion(record: Record, system_prompt: str = SYSTEM_PROMPT) -> dict:
    """TRL's conversational prompt/completion format: the loss falls on the completion only."""
    return {"prompt": prompt_messages(record.instruction, system_prompt),
            "completion": [{"role": "assistant", "content": record.output}]}


def token_lengths(records: list[Record], tokenizer) -> list[int]:
    """Tokens of each example exactly as training sees it: system + user + answer + end of turn."""
    lengths = []
    for record in records:
        example = to_prompt_completion(record)
        ids = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True,
                                            return_dict=True)["input_ids"]
        lengths.append(len(ids))
    return lengths


def too_long(records: list[Record], tokenizer, max_length: int) -> list[tuple[Record, int]]:
    """(record, tokens) for every example training would have to cut at max_length."""
    return [(r, n) for r, n in zip(records, token_lengths(records, tokenizer), strict=True) if n > max_length]


def _stable_key(record: Record) -> str:
    return hashlib.sha256(record.instruction.encode("utf-8")).hexdigest()


def split_by_topic(records: list[Record], eval_fraction: float) -> tuple[list[Record], list[Record]]:
    """Deterministic held-out split, stratified by topic tag.

    Within each tag, records are ordered by a hash of their question; record k of a tag of size n
    gets the position (k + 0.5) / n, so taking the round(N * fraction) smallest positions spreads
    the held-out set over the tags in proportion to their size. No RNG: the same file always gives
    the same split, on every machine.
    """
    if not 0 <= eval_fraction < 1:
        raise UserError(f"eval fraction {eval_fraction} must be in [0, 1)")
    by_tag: dict[str, list[Record]] = {}
    for record in records:
        by_tag.setdefault(record.tag, []).append(record)
    ranked = []
    for group in by_tag.values():
        group.sort(key=_stable_key)
        ranked += [((k + 0.5) / len(group), _stable_key(r), r) for k, r in enumerate(group)]
    ranked.sort(key=lambda item: item[:2])
    n_eval = round(len(records) * eval_fraction)
    held_out = {id(r) for _, _, r in ranked[:n_eval]}
    train = [r for r in records if id(r) not in held_out]
    evaluation = [r for r in records if id(r) in held_out]
    return train, evaluation
