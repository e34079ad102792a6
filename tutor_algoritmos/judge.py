"""An optional judge model scores every generated answer on the rubric, through any OpenAI-compatible
`/v1/chat/completions` server: Ollama, llama.cpp's llama-server or llama-cpp-python's, vLLM.

    make eval JUDGE_URL=http://localhost:11434/v1 JUDGE_MODEL=qwen2.5:7b-instruct

Temperature 0 and a reply that must be the rubric's JSON object alone; one that is not is asked
for once more, then counted as "no verdict", which never stops the run. Verdicts are cached on disk by rubric
version, judge model and the text judged, so a re-run costs nothing. The report gives, per
dimension and per kind, base and tuned means with a 95% bootstrap interval and the share of rows
where tuned beats base.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from tutor_algoritmos.dataset import Record, by_kind
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import publish, temporary_sibling
from tutor_algoritmos.judge_rubric import DIMENSIONS, RETRY, RUBRIC_VERSION, SYSTEM, VALUES, user_message

logger = logging.getLogger("tutor")

KEYS = [key for key, _ in DIMENSIONS]
BOOTSTRAP_SAMPLES = 2000
TIMEOUT_S = 600  # a 14B judge on a CPU takes minutes per verdict; a GPU, seconds
MAX_VERDICT_TOKENS = 160  # the rubric's JSON object is ~110 tokens


def parse_verdict(text: str) -> dict[str, float | None] | None:
    """The rubric's JSON object as scores (yes 1, partly 0.5, no 0, n/a None), or None if it is not one."""
    text = text.strip()
    if text.startswith("```"):  # a fenced object is still the object
        text = text.strip("`").removeprefix("json").strip()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or set(obj) != set(KEYS):
        return None
    values = {key: str(obj[key]).strip().lower() for key in KEYS}
    if any(v not in VALUES for v in values.values()):
        return None
    return {key: VALUES[v] for key, v in values.items()}


def conversation_text(record: Record) -> str:
    return "\n\n".join(f"{'Student' if m['role'] == 'user' else 'Tutor'}: {m['content']}" for m in record.messages[:-1])


@dataclass
class Judge:
    url: str
    model: str
    cache_dir: Path

    def __post_init__(self):
        from openai import OpenAI

        # one retry for a dropped connection; a server that is down fails in seconds, not minutes
        self.client = OpenAI(base_url=self.url, api_key="not-needed", timeout=TIMEOUT_S, max_retries=1)

    def check_server(self) -> None:
        """The server answers and serves JUDGE_MODEL (llama-cpp-python would silently use another)."""
        import openai

        try:
            served = [m.id for m in self.client.models.list()]
        except openai.APIConnectionError:
            raise UserError(f"cannot reach the judge at {self.url} — start it (`ollama serve`, or llama.cpp's "
                            "`llama-server -m model.gguf`) or fix JUDGE_URL") from None
        except openai.APIStatusError as err:
            raise UserError(f"{self.url} is not an OpenAI-compatible API ({err.status_code} on /models) — "
                            "JUDGE_URL ends in /v1, e.g. http://localhost:11434/v1") from None
        if self.model not in served and f"{self.model}:latest" in served:
            self.model += ":latest"  # Ollama lists `ollama pull llama3.1` as llama3.1:latest
        if self.model not in served:
            raise UserError(f"the judge server at {self.url} has no model {self.model!r} (it serves: "
                            f"{', '.join(served) or 'none'}) — `ollama pull {self.model}`, or set JUDGE_MODEL to "
                            "one it serves")

    def _cache_file(self, record: Record, answer: str) -> Path:
        # everything the judge reads: an edited reference answer in the dataset is judged again
        key = json.dumps([RUBRIC_VERSION, self.model, record.kind, conversation_text(record), record.answers[-1],
                          answer])
        return self.cache_dir / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.json"

    def is_cached(self, record: Record, answer: str) -> bool:
        return self._cache_file(record, answer).is_file()

    def verdict(self, record: Record, answer: str) -> dict[str, float | None] | None:
        cached = self._cache_file(record, answer)
        if cached.is_file():
            return json.loads(cached.read_text())["verdict"]
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": user_message(record.kind, conversation_text(record),
                                                             record.answers[-1], answer)}]
        replies = []
        for _ in range(2):  # the reply, and one more try if it is not the rubric's JSON object
            reply = self._complete(messages)
            replies.append(reply)
            verdict = parse_verdict(reply)
            if verdict is not None:
                break
            messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": RETRY}]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = temporary_sibling(cached)
        tmp.write_text(json.dumps({"verdict": verdict, "replies": replies}, ensure_ascii=False))
        publish(tmp, cached)
        return verdict

    def _complete(self, messages: list[dict]) -> str:
        import openai

        try:
            # no response_format: llama-cpp-python's JSON grammar runs in Python and takes minutes per
            # verdict on a CPU; the rubric asks for JSON only, and a reply that is not gets one retry
            out = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0,
                                                      max_tokens=MAX_VERDICT_TOKENS)
        except openai.APIConnectionError:
            raise ConnectionError from None
        except openai.BadRequestError as err:  # llama.cpp and vLLM refuse a prompt over their context
            raise UserError(f"the judge at {self.url} refused a prompt ({str(err)[:160]}) — give it a larger "
                            "context: `llama-server -c 8192`, or `OLLAMA_CONTEXT_LENGTH=8192 ollama serve` (Ollama "
                            "would otherwise cut long prompts silently)") from None
        except openai.NotFoundError:
            raise UserError(f"the judge at {self.url} no longer serves {self.model!r} — "
                            f"`ollama pull {self.model}` and run make eval again") from None
        return out.choices[0].message.content or ""


def judge_answers(judge: Judge, records: list[Record], answers: dict) -> dict[str, list]:
    """{"base": [verdict or None, ...], "tuned": [...]} for every generated answer.

    The server is checked before the first verdict that is not cached: a re-run whose verdicts are
    all cached needs no server at all."""
    verdicts, total, done, checked = {name: [] for name in answers}, len(records) * len(answers), 0, False
    for name, pairs in answers.items():
        for record, (text, _stopped) in zip(records, pairs, strict=True):
            if not checked and not judge.is_cached(record, text):
                judge.check_server()
                checked = True
            try:
                verdicts[name].append(judge.verdict(record, text))
            except ConnectionError:
                raise UserError(f"the judge at {judge.url} stopped answering after {done} of {total} verdicts; "
                                f"those are cached in {judge.cache_dir} — restart it and run make eval again, "
                                "which reuses them") from None
            done += 1
            logger.info("judge: %d/%d verdicts", done, total)
    return verdicts


def bootstrap_mean(values: list[float], seed: int = 0) -> dict:
    """Mean and its 95% percentile-bootstrap interval (BOOTSTRAP_SAMPLES resamples, fixed seed)."""
    if not values:
        return {"n": 0, "mean": None, "low": None, "high": None}
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(BOOTSTRAP_SAMPLES))
    return {"n": len(values), "mean": sum(values) / len(values),
            "low": means[int(0.025 * BOOTSTRAP_SAMPLES)], "high": means[int(0.975 * BOOTSTRAP_SAMPLES) - 1]}


def win_rate(pairs: list[tuple[float, float]]) -> float | None:
    """Share of rows where tuned scores above base; a tie counts half."""
    if not pairs:
        return None
    return sum(1.0 if t > b else 0.5 if t == b else 0.0 for b, t in pairs) / len(pairs)


def summarize_verdicts(records: list[Record], verdicts: dict[str, list]) -> dict:
    """Per kind ("all" first) and dimension: base and tuned bootstrap means, tuned-over-base win rate."""
    summary = {"rubric_version": RUBRIC_VERSION,
               "no_verdict": {name: sum(v is None for v in vs) for name, vs in verdicts.items()}, "kinds": {}}
    for kind, rows in {"all": list(range(len(records))), **by_kind(records)}.items():
        table = {}
        for key in KEYS:
            scores = {name: [verdicts[name][i][key] for i in rows
                             if verdicts[name][i] is not None and verdicts[name][i][key] is not None]
                      for name in ("base", "tuned")}
            pairs = [(verdicts["base"][i][key], verdicts["tuned"][i][key]) for i in rows
                     if verdicts["base"][i] and verdicts["tuned"][i]
                     and None not in (verdicts["base"][i][key], verdicts["tuned"][i][key])]
            table[key] = {"base": bootstrap_mean(scores["base"]), "tuned": bootstrap_mean(scores["tuned"]),
                          "win_rate": win_rate(pairs)}
        summary["kinds"][kind] = table
    return summary
