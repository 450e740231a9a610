"""The Evaluation tab: run a question set (a sample one or an upload) against the knowledge base's retrieval.

`EvaluationHandlers` holds what the handler needs and no components, so a test calls it directly; `build` lays the
tab out and `wire` connects the two once the Settings tab (whose retrieval mode it uses) exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui import formatting
from ui.services import Services, SessionChoices
from ui.settings_tab import SettingsTab, mode_or_default

if TYPE_CHECKING:
    from kbagent.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def sample_question_sets() -> list[str]:
    """The question sets shipped in samples/, relative to the repository: the only paths the dropdown accepts."""
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "samples").glob("*.jsonl"))


class EvaluationHandlers:
    """The tab's handler over the shared services; its method name is the endpoint's name, so it stays put."""

    def __init__(
        self, svc: Services, defaults: SessionChoices, settings: Settings, question_sets: list[str] | None = None
    ) -> None:
        self.svc = svc
        self.defaults = defaults
        self.settings = settings
        self.question_sets = sample_question_sets() if question_sets is None else question_sets

    def evaluate(
        self,
        chosen: str | None,
        uploaded: str | None,
        top_k: float | None,
        mode_value: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        """Score retrieval on the uploaded set, else the chosen sample one; a browser can send any name, so a
        chosen set must be one of ours."""
        path = Path(uploaded) if uploaded else (REPO / chosen if chosen else None)
        if path is None or not path.is_file() or (not uploaded and chosen not in self.question_sets):
            gr.Warning("Pick a question set or upload one (.jsonl).")
            return gr.skip(), gr.skip()
        mode_value = mode_or_default(mode_value, self.defaults)
        try:
            result = self.svc.evaluate(
                path,
                int(top_k or self.settings.search.k),
                mode_value,
                lambda n, total, _r: progress((n, total), desc=f"question {n}/{total}"),
            )
        except ValueError as exc:  # not a question set
            gr.Warning(str(exc).replace(str(path), path.name))
            return gr.skip(), gr.skip()
        return formatting.eval_summary_html(result.summary()), formatting.eval_rows(result.results)


@dataclass
class EvaluationTab:
    """The tab's components that the handler reads or writes."""

    question_set: gr.Dropdown
    question_upload: gr.File
    eval_k: gr.Number
    run_eval: gr.Button
    eval_summary: gr.HTML
    eval_table: gr.Dataframe


def build(handlers: EvaluationHandlers) -> EvaluationTab:
    """Lay out the tab (inside `gr.Tabs`): the question set, k, the button, the summary and per-question table."""
    question_sets = handlers.question_sets
    with gr.Tab("Evaluation", id="eval"):
        with gr.Row():
            question_set = gr.Dropdown(
                label="Question set",
                choices=question_sets,
                value=question_sets[0] if question_sets else None,
                elem_id="question-set",
            )
            question_upload = gr.File(label="…or upload one (.jsonl)", file_types=[".jsonl"], elem_id="question-upload")
            eval_k = gr.Number(label="Top k", value=handlers.settings.search.k, minimum=1, maximum=100, precision=0)
        run_eval = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
        eval_summary = gr.HTML(elem_id="eval-summary")
        eval_table = gr.Dataframe(
            headers=formatting.EVAL_HEADERS, interactive=False, wrap=True, max_height=600, elem_id="eval-table"
        )
    return EvaluationTab(question_set, question_upload, eval_k, run_eval, eval_summary, eval_table)


def wire(tab: EvaluationTab, handlers: EvaluationHandlers, session: SettingsTab) -> None:
    """Connect the handler; after every tab is laid out, since it uses the Settings tab's retrieval mode."""
    tab.run_eval.click(
        handlers.evaluate,
        [tab.question_set, tab.question_upload, tab.eval_k, session.mode],
        [tab.eval_summary, tab.eval_table],
        api_visibility="undocumented",
        concurrency_id="eval",
        concurrency_limit=1,
    )
