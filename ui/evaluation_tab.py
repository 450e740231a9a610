"""The Evaluation tab: run a question set (a sample one or an upload) against the knowledge base's retrieval, or
("Answers") against one or more models' answers, with an optional judge, as a coloured leaderboard.

`EvaluationHandlers` holds what the handlers need and no components, so a test calls them directly; `build` lays
the tab out and `wire` connects the two once the Settings tab (whose retrieval mode it uses) exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from evaluation.answers import AnswerRow
from kbagent.errors import UserError
from kbagent.services.operations import Services, SessionChoices
from ui import evaluation_format
from ui.chat_tab import model_values
from ui.settings_tab import SettingsTab, mode_or_default, session_choices

if TYPE_CHECKING:
    from kbagent.settings import Settings

REPO = Path(__file__).resolve().parent.parent
MODES = ["Retrieval", "Answers"]
PER_CATEGORY = ["1", "2", "3", "5", "10", "all"]  # questions per category for the answers evaluation


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

    def question_set_path(self, chosen: str | None, uploaded: str | None) -> Path | None:
        """The uploaded set, else the chosen sample one; a browser can send any name, so a chosen set must be one
        of ours. None (with a warning) when there is neither."""
        path = Path(uploaded) if uploaded else (REPO / chosen if chosen else None)
        if path is None or not path.is_file() or (not uploaded and chosen not in self.question_sets):
            gr.Warning("Pick a question set or upload one (.jsonl).")
            return None
        return path

    def evaluate(
        self,
        chosen: str | None,
        uploaded: str | None,
        top_k: float | None,
        mode_value: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[object, ...]:
        """Score retrieval on the uploaded or chosen question set."""
        path = self.question_set_path(chosen, uploaded)
        if path is None:
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
        return evaluation_format.eval_summary_html(result.summary()), evaluation_format.eval_rows(
            result.results, self.svc.display_names()
        )

    def evaluate_answers(
        self,
        chosen: str | None,
        uploaded: str | None,
        models: list[str] | str | None,
        judge: str | None,
        per_category: str | float | None,
        k_value: float | None,
        mode_value: str,
        temperature: float | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[object, ...]:
        """Every chosen model answers the sampled questions with this session's settings; the leaderboard and one
        openable entry per answer. A refused model, a bad count or a bad file is a warning, and nothing runs."""
        path = self.question_set_path(chosen, uploaded)
        if path is None:
            return gr.skip(), gr.skip()
        wanted = [models] if isinstance(models, str) else list(models or [])
        try:
            count = per_category_count(per_category)
        except ValueError as exc:
            gr.Warning(str(exc))
            return gr.skip(), gr.skip()
        progress(0.0, desc="starting…")
        try:
            run = self.svc.evaluate_answers(
                path,
                wanted,
                judge or None,
                count,
                running_accuracy(progress, len(set(wanted)) or 1),
                session_choices(self.defaults, None, k_value, mode_value, temperature),
            )
        except (UserError, ValueError, KeyError, OSError) as exc:  # a refused model, not a question set
            gr.Warning(str(exc).replace(str(path), path.name))
            return gr.skip(), gr.skip()
        return evaluation_format.answers_leaderboard_html(run.leaderboard()), evaluation_format.answer_details_html(
            run.rows, run.cited
        )


def per_category_count(value: str | float | None) -> int | None:
    """The questions per category to ask: "all" (None), or a whole number of at least 1."""
    text = str(value if value is not None else "all").strip().lower()
    if text == "all":
        return None
    try:
        count = int(float(text))
    except ValueError:
        raise ValueError(f"Questions per category: a number or 'all', not {text[:40]!r}.") from None
    if count < 1:
        raise ValueError("Questions per category: at least 1, or 'all'.")
    return count


def running_accuracy(progress: gr.Progress, models: int) -> Callable[[AnswerRow, int, int], None]:
    """An `on_row` that moves the progress bar: "model X: n/N, 67% right" (right: contains the answer)."""
    asked: dict[str, int] = {}
    right: dict[str, list[bool]] = {}

    def step(row: AnswerRow, done: int, total: int) -> None:
        asked[row.model] = asked.get(row.model, 0) + 1
        if row.contains is not None:
            right.setdefault(row.model, []).append(bool(row.contains))
        scored = right.get(row.model, [])
        share = f"{sum(scored) / len(scored):.0%} right" if scored else "none scored yet"
        progress((done, total), desc=f"{row.model}: {asked[row.model]}/{max(total // models, 1)}, {share}")

    return step


def show_mode(mode: str) -> tuple[object, object]:
    """The retrieval controls or the answers ones."""
    return gr.update(visible=mode != "Answers"), gr.update(visible=mode == "Answers")


@dataclass
class EvaluationTab:
    """The tab's components that the handlers read or write."""

    mode: gr.Radio
    question_set: gr.Dropdown
    question_upload: gr.File
    retrieval: gr.Column
    eval_k: gr.Number
    run_eval: gr.Button
    eval_summary: gr.HTML
    eval_table: gr.Dataframe
    answers: gr.Column
    answer_models: gr.Dropdown
    answer_judge: gr.Dropdown
    per_category: gr.Dropdown
    run_answers: gr.Button
    leaderboard: gr.HTML
    answer_details: gr.HTML


def build(handlers: EvaluationHandlers) -> EvaluationTab:
    """Lay out the tab (inside `gr.Tabs`): the mode and question set, then either retrieval's k, button, summary
    and per-question table, or the answers' models, judge, sample size, button, leaderboard and answers."""
    question_sets = handlers.question_sets
    with gr.Tab("Evaluation", id="eval"):
        mode = gr.Radio(MODES, value=MODES[0], label="Evaluate", elem_id="eval-mode")
        with gr.Row():
            question_set = gr.Dropdown(
                label="Question set",
                choices=question_sets,
                value=question_sets[0] if question_sets else None,
                elem_id="question-set",
            )
            question_upload = gr.File(label="…or upload one (.jsonl)", file_types=[".jsonl"], elem_id="question-upload")
        with gr.Column(visible=True) as retrieval:
            eval_k = gr.Number(
                label="Retrieval evaluation: passages scored per question (k)",
                info="For this evaluation only; chat uses Settings' k.",
                value=handlers.settings.search.k,
                minimum=1,
                maximum=100,
                precision=0,
                elem_id="eval-k",
            )
            run_eval = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
            eval_summary = gr.HTML(elem_id="eval-summary")
            eval_table = gr.Dataframe(
                headers=evaluation_format.EVAL_HEADERS,
                column_widths=evaluation_format.EVAL_WIDTHS,  # type: ignore[arg-type]
                interactive=False,
                wrap=True,
                max_height=600,
                elem_id="eval-table",
            )
        answers = _answers_controls(handlers)
    return EvaluationTab(mode, question_set, question_upload, retrieval, eval_k, run_eval, eval_summary, eval_table,
                         answers[0], *answers[1])  # fmt: skip


def _answers_controls(
    handlers: EvaluationHandlers,
) -> tuple[gr.Column, tuple[gr.Dropdown, gr.Dropdown, gr.Dropdown, gr.Button, gr.HTML, gr.HTML]]:
    """The Answers mode's column: the models to compare (the chat's model list), the judge, the sample size."""
    choices = model_values(handlers.defaults, handlers.svc.models)
    with gr.Column(visible=False) as answers:
        with gr.Row():
            models = gr.Dropdown(
                label="Models",
                choices=choices,
                value=[handlers.defaults.model],
                multiselect=True,
                allow_custom_value=True,
                info="One or more, from the chat's list (or typed provider:model); each answers every question.",
                elem_id="answer-models",
            )
            judge = gr.Dropdown(
                label="Judge (optional)",
                choices=[("none", ""), *choices],
                value="",
                allow_custom_value=True,
                info="Grades accuracy, completeness and relevance 1-5 against the reference answers.",
                elem_id="answer-judge",
            )
            per_category = gr.Dropdown(
                label="Questions per category", choices=PER_CATEGORY, value="2", elem_id="per-category"
            )
        run = gr.Button("Run answers evaluation", variant="primary", elem_id="run-answers")
        leaderboard = gr.HTML(elem_id="answers-leaderboard")
        details = gr.HTML(elem_id="answer-details")
    return answers, (models, judge, per_category, run, leaderboard, details)


def wire(tab: EvaluationTab, handlers: EvaluationHandlers, session: SettingsTab) -> None:
    """Connect the handlers; after every tab is laid out, since they use the Settings tab's controls. Each run
    has a queue of its own, apart from chat's: a long answers run never holds a chat request back (local models
    still answer one question at a time; see `Services.evaluate_answers`)."""
    tab.mode.change(show_mode, tab.mode, [tab.retrieval, tab.answers], api_visibility="private", queue=False)
    tab.run_eval.click(
        handlers.evaluate,
        [tab.question_set, tab.question_upload, tab.eval_k, session.mode],
        [tab.eval_summary, tab.eval_table],
        api_visibility="undocumented",
        concurrency_id="eval",
        concurrency_limit=1,
    )
    answers_inputs = [tab.question_set, tab.question_upload, tab.answer_models, tab.answer_judge, tab.per_category]
    tab.run_answers.click(
        handlers.evaluate_answers,
        [*answers_inputs, session.k, session.mode, session.temperature],
        [tab.leaderboard, tab.answer_details],
        api_visibility="undocumented",
        concurrency_id="eval_answers",
        concurrency_limit=1,
    )
