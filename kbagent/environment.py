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


_SET_HERE: set[str] = set()  # the DEFAULTS that prepare() set (the user had not)


def prepare() -> None:
    """Call before Gradio, huggingface_hub or chromadb are imported: they read these once, at import."""
    for key, value in DEFAULTS.items():
        if key not in os.environ:
            os.environ[key] = value
            _SET_HERE.add(key)
    os.environ.update(FORCED)


def allow_downloads() -> None:
    """For the one command that downloads (`kbagent models pull`), before huggingface_hub is imported: lifts
    the offline and no-progress-bar defaults that `prepare` set, never ones the user set."""
    for key in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        if key in _SET_HERE:
            del os.environ[key]
            _SET_HERE.discard(key)
