"""Base vs tuned on held-out questions: answer loss (HF) and generated answers (llama.cpp GGUF).

    python -m tutor_algoritmos.evaluation --base out/demo/base --tuned out/demo/merged \
        --base-gguf out/demo/base-Q4_K_M.gguf --tuned-gguf out/demo/tutor_algoritmos-Q4_K_M.gguf \
        --data algoritmos_fixed.jsonl --out out/demo

The held-out split is the one training used (same fraction, same stratified hash order), or every
line of --eval-data. The loss covers every tutor turn of a held-out row, as training labels them;
generation answers the last tutor turn of each row with the earlier turns as context. Both are
reported overall and per kind, and each generated answer gets the checks of its row's kind
(answer_checks.py). Writes report.md, report.json, answers.md (every answer, base vs tuned, with its
checks) and loss_curves.png into --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from tutor_algoritmos import recipe
from tutor_algoritmos.answer_checks import check_answer
from tutor_algoritmos.chat_formats import detect_chat_format, training_chat_template
from tutor_algoritmos.dataset import (
    Record,
    by_kind,
    context_for_last_answer,
    load_records,
    split_by_topic,
    to_conversation,
)
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.eval_report import write_answers, write_report
from tutor_algoritmos.modelfile import NUM_CTX

logger = logging.getLogger("tutor")

def answer_losses(model_dir: Path, records: list[Record]) -> list[tuple[float, int]]:
    """(summed cross-entropy, labelled tokens) of every tutor turn of each row, labelled as in training.

    The same computation as training's CPU fast path (answer positions only through the LM head,
    fp32 cross-entropy) on bf16 weights, which bf16 autocast would round the matmul inputs to anyway.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tutor_algoritmos.answer_loss import answer_token_loss

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
    llm = load_llama(gguf, n_ctx=NUM_CTX)  # as the Modelfile serves it
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


def summarize(checks: list[dict[str, bool]]) -> dict[str, float]:
    """Share of answers passing each check (over the answers it applies to), and all of theirs."""
    names = list(dict.fromkeys(name for c in checks for name in c))
    rates = {name: sum(c[name] for c in checks if name in c) / sum(name in c for c in checks) for name in names}
    rates["all_checks"] = sum(all(c.values()) for c in checks) / len(checks) if checks else 0.0
    return rates


def spread_over_kinds(records: list[Record], limit: int) -> list[Record]:
    """At most `limit` rows, taken one kind at a time in turn, so a short run still sees every kind."""
    queues = [[records[i] for i in rows] for rows in by_kind(records).values()]
    picked = []
    while len(picked) < limit and any(queues):
        picked += [q.pop(0) for q in queues if q][: limit - len(picked)]
    return picked


def run_eval_fraction(adapter: Path) -> float:
    """The held-out share the adapter was trained with (its run_config.json), the recipe's without one."""
    config = adapter / "run_config.json"
    return json.loads(config.read_text())["tutor"]["eval_fraction"] if config.is_file() else recipe.EVAL_FRACTION


def evaluate(args: argparse.Namespace) -> dict:
    eval_fraction = args.eval_fraction if args.eval_fraction is not None else run_eval_fraction(args.adapter)
    records = held_out(args.data, args.eval_data, eval_fraction)
    gen_records = spread_over_kinds(records, args.generate_limit) if args.generate_limit else records
    results = {"n_questions": len(records), "n_generated": len(gen_records), "max_tokens": args.max_tokens,
               "gguf_type": args.tuned_gguf.name, "eval_fraction": eval_fraction}
    answers, losses, checks = {}, {}, {}
    for name, model_dir, gguf in (("base", args.base, args.base_gguf), ("tuned", args.tuned, args.tuned_gguf)):
        logger.info("%s: answer loss on %d held-out rows", name, len(records))
        losses[name] = answer_losses(model_dir, records)
        logger.info("%s: generating %d answers with %s", name, len(gen_records), gguf)
        answers[name] = generate_answers(gguf, gen_records, args.max_tokens)
        checks[name] = [check_answer(text, r, stopped) for (text, stopped), r in zip(answers[name], gen_records,
                                                                                      strict=True)]
        loss = mean_loss(losses[name])
        results[name] = {"loss": loss, "perplexity": math.exp(loss), "answers": summarize(checks[name]),
                         "per_answer": checks[name]}
    results["loss_ratio"] = results["tuned"]["loss"] / results["base"]["loss"]
    results["per_kind"] = {}
    generated = by_kind(gen_records)
    for kind, rows in by_kind(records).items():
        base, tuned = (mean_loss([losses[name][i] for i in rows]) for name in ("base", "tuned"))
        entry = {"rows": len(rows), "base_loss": base, "tuned_loss": tuned, "loss_ratio": tuned / base,
                 "generated": len(generated.get(kind, []))}
        for name in ("base", "tuned"):
            entry[f"{name}_checks"] = summarize([checks[name][i] for i in generated.get(kind, [])])
        results["per_kind"][kind] = entry
    verdicts = None
    if args.judge_url:
        from tutor_algoritmos.judge import Judge, judge_answers, summarize_verdicts

        judge = Judge(args.judge_url, args.judge_model, args.out / "judge-cache")
        verdicts = judge_answers(judge, gen_records, answers)
        results["judge"] = {"url": args.judge_url, "model": args.judge_model,
                            **summarize_verdicts(gen_records, verdicts)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(args.out, results)
    write_answers(args.out / "answers.md", gen_records, answers, checks, verdicts)
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
    parser.add_argument("--judge-url", help="OpenAI-compatible API of a judge model, e.g. http://localhost:11434/v1")
    parser.add_argument("--judge-model", help="the judge's model name on that server (with --judge-url)")
    args = parser.parse_args()
    if args.judge_url and not args.judge_model:
        parser.error("--judge-url needs --judge-model (JUDGE_MODEL=... in make)")
    evaluate(args)


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
