"""`make eval`'s reports, for a teacher to read: report.md (losses and checks, overall and per
kind), report.json (the same numbers) and answers.md (every generated answer, base beside tuned,
with its checks; long answers folded)."""

from __future__ import annotations

import json
from pathlib import Path

from tutor_algoritmos.dataset import Record
from tutor_algoritmos.files import publish, temporary_sibling

FOLD_CHARS = 600  # answers longer than this are folded in <details> in answers.md


def _publish_text(path: Path, text: str) -> None:
    tmp = temporary_sibling(path)
    tmp.write_text(text, encoding="utf-8")
    publish(tmp, path)


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
    _publish_text(out / "report.md", "\n".join(lines) + "\n")
    _publish_text(out / "report.json", json.dumps(results, ensure_ascii=False, indent=2))


def _checks_line(checks: dict[str, bool]) -> str:
    return " · ".join(f"{'✓' if ok else '✗'} {name.replace('_', ' ')}" for name, ok in checks.items())


def _answer_block(text: str) -> list[str]:
    if len(text) <= FOLD_CHARS:
        return [text, ""]
    return [f"<details><summary>{len(text):,} characters</summary>", "", text, "", "</details>", ""]


def write_answers(path: Path, records: list[Record], answers: dict, checks: dict) -> None:
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
            lines += [f"### {name}: {_checks_line(checks[name][i])}", "", *_answer_block(answers[name][i][0])]
    _publish_text(path, "\n".join(lines))
