"""The Settings tab: retrieval k, mode and temperature for one browser session. The other tabs read these
controls, so `session_choices` (what they add up to) lives here too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from agent.models import ModelChoice
from kbagent.services.operations import SessionChoices
from knowledge_base.config import Mode
from knowledge_base.retrieval import MODES
from ui.markup import md_escape


@dataclass
class SettingsTab:
    """The session controls, handed to the other tabs' `wire` as inputs."""

    k: gr.Slider
    mode: gr.Radio
    temperature: gr.Slider


def build(defaults: SessionChoices, models: Sequence[ModelChoice] = ()) -> SettingsTab:
    """Lay out the tab (inside `gr.Tabs`), starting from the configured defaults; then which models run here."""
    with gr.Tab("Settings", id="settings"):
        gr.Markdown("These apply to this browser session only.")
        k = gr.Slider(
            1,
            20,
            value=defaults.k,
            step=1,
            label="Chat: passages per search (k)",
            info="How many passages the agent is given per search, in chat and in the Answers evaluation.",
            elem_id="k",
        )
        mode = gr.Radio(list(MODES), value=defaults.mode, label="Retrieval mode", elem_id="mode")
        temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label="Temperature", elem_id="temperature")
        gr.Markdown("### Models on this machine")
        gr.Markdown(models_markdown(models), elem_id="models-list")
    return SettingsTab(k, mode, temperature)


def models_markdown(models: Sequence[ModelChoice]) -> str:
    """Which models run here, one line each: the name, yes or no, and why."""
    lines = []
    for m in models:
        verdict = "runs here" if m.usable else "does not run here"
        lines.append(f"- {'✔' if m.usable else '✘'} `{md_escape(m.spec)}` {verdict}: {md_escape(m.reason)}")
    return "\n".join(lines) or "_No models._"


def mode_or_default(mode: str | None, defaults: SessionChoices) -> Mode:
    """A browser or API client can send any string as the mode: unknown ones fall back to the configured mode."""
    return mode if mode in MODES else defaults.mode  # type: ignore[return-value]  # MODES lists Mode's values


def session_choices(
    defaults: SessionChoices, model: str | None, k: float | None, mode: str | None, temperature: float | None
) -> SessionChoices:
    """The session's controls as `SessionChoices`; empty or unknown values fall back to the defaults."""
    return SessionChoices(
        model=(model or "").strip() or defaults.model,
        k=int(k or defaults.k),
        mode=mode_or_default(mode, defaults),
        temperature=float(temperature if temperature is not None else defaults.temperature),
    )
