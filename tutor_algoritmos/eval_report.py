"""`make eval`'s reports, for a teacher to read: report.md (losses and checks, overall and per
kind), report.json (the same numbers) and answers.md (every generated answer, base beside tuned,
with its checks; long answers folded)."""

from __future__ import annotations

import json
from pathlib import Path

from tutor_algoritmos.dataset import Record
from tutor_algoritmos.files import publish_text

FOLD_CHARS = 600  # answers longer than this are folded in <details> in answers.md


def _rate_rows(base: dict, tuned: dict) -> list[str]:
    return [f"| {name.replace('_', ' ')} | {base[name]:.0%} | {tuned[name]:.0%} |" for name in base]


def write_report(out: Path, results: dict) -> None:
    lines = ["# Tutor de Algoritmos: base vs tuned", "",
             f"{results['n_questions']} held-out rows (eval fraction {results['eval_fraction']}); generation "
             f"greedy through llama.cpp ({results['gguf_type']}), at most {results['max_tokens']} tokens, for the "
             f"last tutor turn of {results['n_generated']} of them. Every answer: [answers.md](answers.md).", "",
             "| metric | base | tuned |", "| --- | ---: | ---: |",
             f"| answer-token loss | {results['base']['loss']:.3f} | {results['tuned']['loss']:.3f} |",
             f"| perplexity | {results['base']['perplexity']:.3f} | {results['tuned']['perplexity']:.3f} |",
             f"| tuned / base loss | | {results['loss_ratio']:.3f} |",
             *_rate_rows(results["base"]["answers"], results["tuned"]["answers"]),
             "", "## Held-out loss per kind", "",
             "| kind | rows | base | tuned | tuned / base |", "| --- | ---: | ---: | ---: | ---: |"]
    for kind, entry in results["per_kind"].items():
        lines.append(f"| {kind} | {entry['rows']} | {entry['base_loss']:.3f} | {entry['tuned_loss']:.3f} | "
                     f"{entry['loss_ratio']:.3f} |")
    lines += ["", "## Checks per kind", "",
              "The share of generated answers that pass each check of their kind (answer_checks.py)."]
    for kind, entry in results["per_kind"].items():
        if entry["generated"]:
            lines += ["", f"### {kind} ({entry['generated']} generated)", "", "| check | base | tuned |",
                      "| --- | ---: | ---: |", *_rate_rows(entry["base_checks"], entry["tuned_checks"])]
    if "judge" in results:
        lines += judge_section(results["judge"])
    publish_text(out / "report.md", "\n".join(lines) + "\n")
    publish_text(out / "report.json", json.dumps(results, ensure_ascii=False, indent=2))


def _interval(stat: dict) -> str:
    return "—" if stat["mean"] is None else f"{stat['mean']:.2f} [{stat['low']:.2f}, {stat['high']:.2f}]"


def judge_section(judge: dict) -> list[str]:
    lines = ["", f"## Judge: {judge['model']} (rubric v{judge['rubric_version']})", "",
             "Scores per dimension (yes 1, partly 0.5, no 0; n/a left out): mean and 95% bootstrap interval, "
             "and the share of rows where tuned scores above base (ties count half). No verdict: "
             f"base {judge['no_verdict']['base']}, tuned {judge['no_verdict']['tuned']}."]
    for kind, table in judge["kinds"].items():
        lines += ["", f"### {kind}", "", "| dimension | base | tuned | tuned wins |", "| --- | --- | --- | ---: |"]
        for key, entry in table.items():
            wins = "—" if entry["win_rate"] is None else f"{entry['win_rate']:.0%}"
            lines.append(f"| {key.replace('_', ' ')} | {_interval(entry['base'])} | {_interval(entry['tuned'])} | "
                         f"{wins} |")
    return lines


def _verdict_line(verdict: dict | None) -> str:
    if verdict is None:
        return "judge: no verdict"
    shown = {0.0: "no", 0.5: "partly", 1.0: "yes"}
    return "judge: " + ", ".join(f"{key.replace('_', ' ')} {shown[v]}" for key, v in verdict.items() if v is not None)


def _checks_line(checks: dict[str, bool]) -> str:
    return " · ".join(f"{'✓' if ok else '✗'} {name.replace('_', ' ')}" for name, ok in checks.items())


def _answer_block(text: str) -> list[str]:
    if len(text) <= FOLD_CHARS:
        return [text, ""]
    return [f"<details><summary>{len(text):,} characters</summary>", "", text, "", "</details>", ""]


def write_answers(path: Path, records: list[Record], answers: dict, checks: dict, verdicts: dict | None = None) -> None:
    lines = ["# Every generated answer, base vs tuned", "",
             "The student's last message, the conversation before it (folded), the dataset's reference answer "
             "(folded), then each model's answer with the checks of the row's kind.", ""]
    for i, record in enumerate(records):
        lines += [f"## {i + 1}. {record.topic} · {record.kind} (line {record.line})", "",
                  f"**Estudiante:** {record.student_turns[-1]}", ""]
        if len(record.messages) > 2:
            earlier = "\n\n".join(f"**{'Estudiante' if m['role'] == 'user' else 'Tutor'}:** {m['content']}"
                                  for m in record.messages[:-2])
            lines += ["<details><summary>Conversación previa</summary>", "", earlier, "", "</details>", ""]
        lines += ["<details><summary>Respuesta de referencia</summary>", "", record.answers[-1], "",
                  "</details>", ""]
        for name in ("base", "tuned"):
            lines += [f"### {name}: {_checks_line(checks[name][i])}", ""]
            if verdicts is not None:
                lines += [f"*{_verdict_line(verdicts[name][i])}*", ""]
            lines += _answer_block(answers[name][i][0])
    publish_text(path, "\n".join(lines))
