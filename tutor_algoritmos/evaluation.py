"""Base vs tuned on held-out questions: answer loss (HF) and generated answers (llama.cpp GGUF).

    python -m tutor_algoritmos.evaluation --base out/demo/base --tuned out/demo/merged \
        --base-gguf out/demo/base-Q4_K_M.gguf --tuned-gguf out/demo/tutor_algoritmos-Q4_K_M.gguf \
        --data algoritmos_fixed.jsonl --out out/demo

The held-out split is the one training used (same fraction, same stratified hash order), or every
line of --eval-data. The loss covers every tutor turn of a held-out row, as training labels them;
generation answers the last tutor turn of each row with the earlier turns as context. Both are
reported overall and per kind. Writes report.md, report.json and loss_curves.png into --out.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tutor_algoritmos.chat_formats import detect_chat_format, training_chat_template
from tutor_algoritmos.check_data import PYTHON_BLOCK
from tutor_algoritmos.dataset import (
    KINDS,
    Record,
    context_for_last_answer,
    load_records,
    split_by_topic,
    to_conversation,
)
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.files import publish, temporary_sibling
from tutor_algoritmos.sandbox import run_python

logger = logging.getLogger("tutor")

# Frequent function words that tell Spanish prose from English prose.
SPANISH = frozenset("el la los las de del que y en un una es por con para como se su al lo más pero "
                    "este esta cada cuando donde porque también entonces".split())
ENGLISH = frozenset("the of and to in is that for it as with this are be by on an which when".split())
MIN_CHARS, MAX_CHARS = 200, 6000  # the dataset's answers are 1,600-3,000 characters


@dataclass
class AnswerScore:
    spanish: bool
    python_parses: bool
    python_runs: bool
    analogy: bool
    stopped: bool  # ended on the end-of-turn token by itself, not at the token limit
    no_role_tokens: bool
    length_ok: bool

    @property
    def all_ok(self) -> bool:
        return all(asdict(self).values())


def score_answer(text: str, stopped: bool) -> AnswerScore:
    words = re.findall(r"[a-záéíóúñü]+", text.lower())
    es, en = sum(w in SPANISH for w in words), sum(w in ENGLISH for w in words)
    blocks = PYTHON_BLOCK.findall(text)
    parses = False
    if blocks:
        try:
            ast.parse(blocks[0])
            parses = True
        except SyntaxError:
            pass
    return AnswerScore(
        spanish=es > 2 * en and es >= 5,
        python_parses=parses,
        python_runs=parses and run_python(blocks[0]).ok,
        analogy="analogía" in text.lower(),
        stopped=stopped,
        no_role_tokens=re.search(r"<\|[a-z_]+\|>", text) is None,
        length_ok=MIN_CHARS <= len(text) <= MAX_CHARS,
    )


def answer_losses(model_dir: Path, records: list[Record]) -> list[tuple[float, int]]:
    """(summed cross-entropy, labelled tokens) of every tutor turn of each row, labelled as in training.

    The same computation as training's CPU fast path (answer positions only through the LM head,
    fp32 cross-entropy) on bf16 weights, which bf16 autocast would round the matmul inputs to anyway.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tutor_algoritmos.cpu_fast_path import answer_token_loss

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = training_chat_template(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    losses = []
    for record in records:
        encoded = tokenizer.apply_chat_template(to_conversation(record)["messages"], chat_template=template,
                                                tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        ids = encoded["input_ids"]
        labels = [t if m else -100 for t, m in zip(ids, encoded["assistant_masks"], strict=True)]
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            loss, counts = answer_token_loss(model, {"input_ids": torch.tensor([ids]),
                                                     "labels": torch.tensor([labels])})
        losses.append((loss.item() * counts["labelled"], counts["labelled"]))
    return losses


def mean_loss(losses: list[tuple[float, int]]) -> float:
    """Per token, over all the rows given: long answers weigh as much as they are long."""
    return sum(total for total, _ in losses) / max(sum(count for _, count in losses), 1)


def generate_answers(gguf: Path, records: list[Record], max_tokens: int) -> list[tuple[str, bool]]:
    """(answer, stopped by itself) for each question, greedy, through llama.cpp like Ollama."""
    from tutor_algoritmos.gguf_tools import load_llama, read_gguf_info

    info = read_gguf_info(gguf)
    fmt = detect_chat_format(info.chat_template)
    llm = load_llama(gguf, n_ctx=4096)
    answers = []
    try:
        for record in records:
            out = llm.create_chat_completion(messages=context_for_last_answer(record), max_tokens=max_tokens,
                                             temperature=0.0, stop=list(fmt.stops))
            choice = out["choices"][0]
            answers.append((choice["message"]["content"], choice["finish_reason"] == "stop"))
    finally:
        llm.close()
    return answers


def held_out(data: Path, eval_data: Path | None, eval_fraction: float) -> list[Record]:
    if eval_data:
        return load_records(eval_data)
    _, evaluation = split_by_topic(load_records(data), eval_fraction)
    if not evaluation:
        raise UserError(f"{data} gives no held-out examples at eval fraction {eval_fraction}")
    return evaluation


def summarize(scores: list[AnswerScore]) -> dict:
    fields = list(asdict(scores[0])) if scores else []
    rates = {f: sum(getattr(s, f) for s in scores) / len(scores) for f in fields}
    rates["all_checks"] = sum(s.all_ok for s in scores) / len(scores) if scores else 0.0
    return rates


def by_kind(records: list[Record]) -> dict[str, list[int]]:
    """Row indices per kind, in KINDS order, for the kinds present."""
    groups = {kind: [i for i, r in enumerate(records) if r.kind == kind] for kind in KINDS}
    return {kind: rows for kind, rows in groups.items() if rows}


def write_report(out: Path, results: dict, samples: list[dict]) -> None:
    rows = [("answer-token loss", "loss"), ("perplexity", "perplexity")]
    lines = ["# Tutor de Algoritmos: base vs tuned", "",
             f"{results['n_questions']} held-out rows; generation greedy through llama.cpp "
             f"({results['gguf_type']}), at most {results['max_tokens']} tokens, for the last tutor turn "
             f"of {results['n_generated']} of them.", "",
             "| metric | base | tuned |", "| --- | ---: | ---: |"]
    for label, key in rows:
        lines.append(f"| {label} | {results['base'][key]:.3f} | {results['tuned'][key]:.3f} |")
    lines.append(f"| tuned / base loss | | {results['loss_ratio']:.3f} |")
    for key in results["base"]["answers"]:
        lines.append(f"| answers: {key.replace('_', ' ')} | {results['base']['answers'][key]:.0%} | "
                     f"{results['tuned']['answers'][key]:.0%} |")
    lines += ["", "## Held-out loss per kind", "", "| kind | rows | base | tuned | tuned / base |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for kind, entry in results["per_kind"].items():
        lines.append(f"| {kind} | {entry['rows']} | {entry['base_loss']:.3f} | {entry['tuned_loss']:.3f} | "
                     f"{entry['loss_ratio']:.3f} |")
    lines += ["", "## Sample answers", ""]
    for sample in samples:
        lines += [f"### {sample['question']} ({sample['kind']})", "", "| base | tuned |", "| --- | --- |",
                  f"| {_cell(sample['base'])} | {_cell(sample['tuned'])} |", ""]
    tmp = temporary_sibling(out / "report.md")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    publish(tmp, out / "report.md")
    tmp = temporary_sibling(out / "report.json")
    tmp.write_text(json.dumps({**results, "samples": samples}, ensure_ascii=False, indent=2), encoding="utf-8")
    publish(tmp, out / "report.json")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def run_eval_fraction(adapter: Path) -> float:
    """The held-out share the adapter was trained with (its run_config.json), 0.1 without one."""
    config = adapter / "run_config.json"
    return json.loads(config.read_text())["tutor"]["eval_fraction"] if config.is_file() else 0.1


def evaluate(args: argparse.Namespace) -> dict:
    eval_fraction = args.eval_fraction if args.eval_fraction is not None else run_eval_fraction(args.adapter)
    records = held_out(args.data, args.eval_data, eval_fraction)
    gen_records = records[: args.generate_limit] if args.generate_limit else records
    results = {"n_questions": len(records), "n_generated": len(gen_records), "max_tokens": args.max_tokens,
               "gguf_type": args.tuned_gguf.name, "eval_fraction": eval_fraction}
    answers, losses = {}, {}
    for name, model_dir, gguf in (("base", args.base, args.base_gguf), ("tuned", args.tuned, args.tuned_gguf)):
        logger.info("%s: answer loss on %d held-out rows", name, len(records))
        losses[name] = answer_losses(model_dir, records)
        logger.info("%s: generating %d answers with %s", name, len(gen_records), gguf)
        answers[name] = generate_answers(gguf, gen_records, args.max_tokens)
        scores = [score_answer(text, stopped) for text, stopped in answers[name]]
        loss = mean_loss(losses[name])
        results[name] = {"loss": loss, "perplexity": math.exp(loss), "answers": summarize(scores),
                         "per_answer": [asdict(s) for s in scores]}
    results["loss_ratio"] = results["tuned"]["loss"] / results["base"]["loss"]
    results["per_kind"] = {}
    for kind, rows in by_kind(records).items():
        base, tuned = (mean_loss([losses[name][i] for i in rows]) for name in ("base", "tuned"))
        results["per_kind"][kind] = {"rows": len(rows), "base_loss": base, "tuned_loss": tuned,
                                     "loss_ratio": tuned / base}
    samples = [{"question": r.student_turns[-1], "kind": r.kind, "base": answers["base"][i][0],
                "tuned": answers["tuned"][i][0]} for i, r in enumerate(gen_records[:3])]
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(args.out, results, samples)
    history = args.adapter / "log_history.json"
    if history.is_file():
        from tutor_algoritmos.loss_curve import plot_loss_curve

        log = json.loads(history.read_text())
        last_step = max((e["step"] for e in log), default=0)
        plot_loss_curve(log, args.out / "loss_curves.png", "training and held-out loss",
                        held_out={"base": (0, results["base"]["loss"]),
                                  "tuned": (last_step, results["tuned"]["loss"])})
    logger.info("answer loss base %.3f -> tuned %.3f (x%.3f); all answer checks %.0f%% -> %.0f%%; see %s",
                results["base"]["loss"], results["tuned"]["loss"], results["loss_ratio"],
                100 * results["base"]["answers"]["all_checks"], 100 * results["tuned"]["answers"]["all_checks"],
                args.out / "report.md")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="base model folder")
    parser.add_argument("--tuned", type=Path, required=True, help="merged tuned model folder")
    parser.add_argument("--base-gguf", type=Path, required=True)
    parser.add_argument("--tuned-gguf", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, default=Path("out/adapter"), help="for its loss history")
    parser.add_argument("--data", type=Path, default=Path("algoritmos_fixed.jsonl"))
    parser.add_argument("--eval-data", type=Path, help="evaluate on every line of this JSONL instead")
    parser.add_argument("--eval-fraction", type=float,
                        help="held-out share; default: the one the adapter was trained with (--adapter)")
    parser.add_argument("--max-tokens", type=int, default=1024, help="answer length limit when generating")
    parser.add_argument("--generate-limit", type=int, default=0, help="generate for the first N questions only")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md/json and the PNG")
    evaluate(parser.parse_args())


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
