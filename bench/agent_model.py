"""The embedded model on this machine: time to first token and tokens/s on the agent's typical RAG prompt and on
a 1,000-token prompt, and answer accuracy on the sample question set.

Time to first token is set against what the model's raw prefill rate allows for the tokens it actually had
to read (llama.cpp's own counters: a cached prefix, such as the fixed system prompt, is not read again).
The raw rate is measured here first, on 512 tokens from an empty context.

    .venv/bin/python bench/agent_model.py [--questions N] [--model ''|provider:model]

Accuracy, exactly as counted: an answer is "right" when it contains at least one of the question's keywords
(case-insensitive substring), nothing more. There is no abstention check and no citation check here: a
rambling answer that happens to name one keyword counts as right. `kbagent eval --answers` (the answers
evaluation) is the measure to use for answers; this figure only tracks the model's speed against a rough
accuracy. Prints a table, writes bench/results/agent_model.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from langchain_core.messages import HumanMessage, SystemMessage

from agent import prompts
from agent.events import Done
from evaluation import load_questions
from kbagent.components import Components
from kbagent.settings import Settings
from tools.knowledge_search import Passages, search_passages

ROOT = Path(__file__).resolve().parent.parent


def llama_counters(model):  # type: ignore[no-untyped-def]
    """llama.cpp's context counters (prompt tokens read so far), or None for other models."""
    client = getattr(model, "client", None)
    if client is None or not hasattr(client, "_ctx"):
        return None
    import llama_cpp

    return llama_cpp.llama_perf_context(client._ctx.ctx)


def raw_prefill_rate(model) -> float | None:  # type: ignore[no-untyped-def]
    """Tokens/s reading 512 tokens from an empty context, best of three."""
    client = getattr(model, "client", None)
    if client is None or not hasattr(client, "eval"):
        return None
    tokens = client.tokenize((ROOT / "README.md").read_text().encode())[:512]
    best = 0.0
    for _ in range(3):
        client.reset()
        start = time.perf_counter()
        client.eval(tokens)
        best = max(best, len(tokens) / (time.perf_counter() - start))
    client.reset()
    return round(best, 1)


def timed_stream(model, messages, raw_rate: float | None = None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    before = llama_counters(model)
    start = time.perf_counter()
    first = None
    pieces = 0
    text = ""
    for chunk in model.stream(messages):
        if chunk.content:
            if first is None:
                first = time.perf_counter()
            pieces += 1
            text += str(chunk.content)
    end = time.perf_counter()
    first = first or end
    prompt_tokens = (
        len(model.client.tokenize("".join(str(m.content) for m in messages).encode()))
        if hasattr(model, "client")
        else None
    )
    after = llama_counters(model)
    read = after.n_p_eval - before.n_p_eval if after and before else None
    allowed = read / raw_rate if read and raw_rate else None
    return {
        "tokens_read": read,
        "ttft_allowed_s": round(allowed, 2) if allowed else None,
        "ttft_over_allowed": round((first - start) / allowed - 1, 3) if allowed else None,
        "ttft_s": round(first - start, 2),
        "decode_tok_s": round((pieces - 1) / (end - first), 1) if pieces > 1 else 0,
        "tokens": pieces,
        "prompt_tokens": prompt_tokens,
        "total_s": round(end - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=36)
    parser.add_argument("--model", default="")
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(os.environ.get("KBAGENT_MODELS_DIR", str(ROOT / "data" / "models")))
        settings = Settings(data_dir=Path(tmp), models_dir=models_dir, model=args.model, _env_file=None)
        with Components(settings) as parts:
            kb = parts.kb
            parts.ingest([ROOT / "samples" / "harborview"])
            agent = parts.agent()
            model = agent.model

            def rag_prompt(question: str) -> tuple[list, list]:  # type: ignore[type-arg]
                found = search_passages(
                    kb, Passages(), question, settings.agent.k, min_similarity=settings.agent.min_similarity
                )
                return agent.loop.answer_messages(question, found, []), found

            raw_rate = raw_prefill_rate(model)
            results["raw_prefill_tok_s"] = raw_rate
            # Warm-up on another question: loads the model and caches the fixed system prompt, as in a session.
            timed_stream(model, rag_prompt("When is the workshop open on Saturdays?")[0])
            rag, found = rag_prompt("How much does a Family membership cost per year?")
            results["rag_prompt"] = timed_stream(model, rag, raw_rate)
            filler = " ".join(p.text for p in found) * 3
            long = [
                SystemMessage(prompts.RETRIEVAL_FIRST),
                HumanMessage(f"Passages:\n{filler[:4200]}\n\nQuestion: Summarise the passages in one sentence."),
            ]
            results["long_prompt"] = timed_stream(model, long, raw_rate)

            answerable = [q for q in load_questions(ROOT / "samples" / "harborview_questions.jsonl") if q.answerable]
            questions = answerable[: args.questions]
            right, times, rows = 0, [], []
            for q in questions:
                start = time.perf_counter()
                done = None
                for event in agent.stream(q.question):
                    if isinstance(event, Done):
                        done = event
                seconds = time.perf_counter() - start
                answer = done.answer if done else ""
                ok = any(k.lower() in answer.lower() for k in q.keywords)
                right += ok
                times.append(seconds)
                rows.append({"question": q.question, "answer": answer, "ok": ok, "seconds": round(seconds, 1)})
                print(f"{'ok ' if ok else 'no '} {seconds:5.1f}s  {q.question}  ->  {answer[:100]!r}", flush=True)
            if not questions:
                results["accuracy"] = None
            else:
                results["accuracy"] = {
                    "right": right,
                    "questions": len(questions),
                    "share": round(right / len(questions), 3),
                    "median_answer_s": round(statistics.median(times), 1),
                }
            results["answers"] = rows
    for key in ("raw_prefill_tok_s", "rag_prompt", "long_prompt", "accuracy"):
        print(f"{key:12} {results[key]}")
    save("agent_model", results)


if __name__ == "__main__":
    main()
