"""Base vs tuned on held-out questions: answer loss (HF) and generated answers (llama.cpp GGUF).

    python -m tutor_algoritmos.evaluation --base out/demo/base --tuned out/demo/merged \
        --base-gguf out/demo/base-Q4_K_M.gguf --tuned-gguf out/demo/tutor_algoritmos-Q4_K_M.gguf \
        --data algoritmos_fixed.jsonl --out out/demo

The held-out split is the one training used (same fraction, same stratified hash order), or every
line of --eval-data. Writes report.md, report.json and loss_curves.png into --out.
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

from tutor_algoritmos.chat_formats import detect_chat_format
from tutor_algoritmos.check_data import PYTHON_BLOCK
from tutor_algoritmos.dataset import Record, load_records, prompt_messages, split_by_topic, to_prompt_completion
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


def answer_loss(model_dir: Path, records: list[Record]) -> float:
    """Mean cross-entropy per answer token, formatted exactly as in training.

    The same computation as training's CPU fast path (answer positions only through the LM head,
    fp32 cross-entropy) on bf16 weights, which bf16 autocast would round the matmul inputs to anyway.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tutor_algoritmos.cpu_fast_path import answer_token_loss

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    total, count = 0.0, 0
    for record in records:
        example = to_prompt_completion(record)
        prompt = tokenizer.apply_chat_template(example["prompt"], add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True,
                                             return_dict=True)["input_ids"]
        labels = [-100] * len(prompt) + full[len(prompt):]
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            loss, counts = answer_token_loss(model, {"input_ids": torch.tensor([full]),
                                                     "labels": torch.tensor([labels])})
        total, count = total + loss.item() * counts["labelled"], count + counts["labelled"]
    return total / count


def generate_answers(gguf: Path, records: list[Record], max_tokens: int) -> list[tuple[str, bool]]:
    """(answer, stopped by itself) for each question, greedy, through llama.cpp like Ollama."""
    from tutor_algoritmos.gguf_tools import load_llama, read_gguf_info

    info = read_gguf_info(gguf)
    fmt = detect_chat_format(info.chat_template)
    llm = load_llama(gguf, n_ctx=4096)
    answers = []
    try:
        for record in records:
            out = llm.create_chat_completion(messages=prompt_messages(record.instruction), max_tokens=max_tokens,
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


def write_report(out: Path, results: dict, samples: list[dict]) -> None:
    rows = [("answer-token loss", "loss"), ("perplexity", "perplexity")]
    lines = ["# Tutor de Algoritmos: base vs tuned", "",
             f"{results['n_questions']} held-out questions; generation greedy through llama.cpp "
             f"({results['gguf_type']}), at most {results['max_tokens']} tokens.", "",
             "| metric | base | tuned |", "| --- | ---: | ---: |"]
    for label, key in rows:
        lines.append(f"| {label} | {results['base'][key]:.3f} | {results['tuned'][key]:.3f} |")
    lines.append(f"| tuned / base loss | | {results['loss_ratio']:.3f} |")
    for key in results["base"]["answers"]:
        lines.append(f"| answers: {key.replace('_', ' ')} | {results['base']['answers'][key]:.0%} | "
                     f"{results['tuned']['answers'][key]:.0%} |")
    lines += ["", "## Sample answers", ""]
    for sample in samples:
        lines += [f"### {sample['question']}", "", "| base | tuned |", "| --- | --- |",
                  f"| {_cell(sample['base'])} | {_cell(sample['tuned'])} |", ""]
    tmp = temporary_sibling(out / "report.md")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    publish(tmp, out / "report.md")
    tmp = temporary_sibling(out / "report.json")
    tmp.write_text(json.dumps({**results, "samples": samples}, ensure_ascii=False, indent=2), encoding="utf-8")
    publish(tmp, out / "report.json")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def evaluate(args: argparse.Namespace) -> dict:
    records = held_out(args.data, args.eval_data, args.eval_fraction)
    gen_records = records[: args.generate_limit] if args.generate_limit else records
    results = {"n_questions": len(records), "n_generated": len(gen_records), "max_tokens": args.max_tokens,
               "gguf_type": args.tuned_gguf.name}
    answers = {}
    for name, model_dir, gguf in (("base", args.base, args.base_gguf), ("tuned", args.tuned, args.tuned_gguf)):
        logger.info("%s: answer loss on %d held-out answers", name, len(records))
        loss = answer_loss(model_dir, records)
        logger.info("%s: generating %d answers with %s", name, len(gen_records), gguf)
        answers[name] = generate_answers(gguf, gen_records, args.max_tokens)
        scores = [score_answer(text, stopped) for text, stopped in answers[name]]
        results[name] = {"loss": loss, "perplexity": math.exp(loss), "answers": summarize(scores),
                         "per_answer": [asdict(s) for s in scores]}
    results["loss_ratio"] = results["tuned"]["loss"] / results["base"]["loss"]
    samples = [{"question": r.instruction, "base": answers["base"][i][0], "tuned": answers["tuned"][i][0]}
               for i, r in enumerate(gen_records[:3])]
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
    parser.add_argument("--eval-fraction", type=float, default=0.1, help="as in training")
    parser.add_argument("--max-tokens", type=int, default=1024, help="answer length limit when generating")
    parser.add_argument("--generate-limit", type=int, default=0, help="generate for the first N questions only")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md/json and the PNG")
    evaluate(parser.parse_args())


if __name__ == "__main__":
    from tutor_algoritmos.errors import run_cli

    run_cli(main)
