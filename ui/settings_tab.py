"""The Settings tab: retrieval k, mode and temperature for one browser session. The other tabs read these
controls, so `session_choices` (what they add up to) lives here too."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from knowledge_base.config import Mode
from knowledge_base.retrieval import MODES
from ui.services import SessionChoices


@dataclass
class SettingsTab:
    """The session controls, handed to the other tabs' `wire` as inputs."""

    k: gr.Slider
    mode: gr.Radio
    temperature: gr.Slider


def build(defaults: SessionChoices) -> SettingsTab:
    """Lay out the tab (inside `gr.Tabs`), starting from the configured defaults."""
    with gr.Tab("Settings", id="settings"):
        gr.Markdown("These apply to this browser session only.")
        k = gr.Slider(1, 20, value=defaults.k, step=1, label="Retrieval k (passages per search)", elem_id="k")
        mode = gr.Radio(list(MODES), value=defaults.mode, label="Retrieval mode", elem_id="mode")
        temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label="Temperature", elem_id="temperature")
    return SettingsTab(k, mode, temperature)


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
