"""The process environment every entry point sets first: offline, no telemetry, quiet model loading."""

from __future__ import annotations

import os

DEFAULTS = {
    "HF_HUB_OFFLINE": "1",  # nothing is downloaded at run time
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}
FORCED = {  # no analytics or telemetry, whatever the caller's environment says
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


def prepare() -> None:
    """Call before Gradio, huggingface_hub or chromadb are imported: they read these once, at import."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.update(FORCED)
