"""`kbagent models pull`: one GGUF file from the Hugging Face hub into the models folder, checked against its
sha256, through huggingface_hub (it honours HF_ENDPOINT, shows a progress bar and resumes a dropped transfer).
The only code here that downloads; nothing else in kbagent reaches the hub."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.catalog import CatalogModel, find
from agent.embedded_model import sha256_of
from kbagent.errors import KbagentError

SHA256 = re.compile(r"[0-9a-f]{64}")


class PullError(KbagentError):
    """The file could not be pulled (offline, not found, failed its checksum): one line for the user."""


@dataclass(frozen=True)
class Pulled:
    path: Path
    sha256: str
    checked_against: str  # where the expected sha256 came from: "catalogue" or "hub"


def resolve(target: str) -> CatalogModel:
    """A catalogue name, or any `OWNER/REPO/FILE.gguf` on the hub."""
    entry = find(target)
    if entry is not None:
        return entry
    parts = target.strip().split("/")
    if len(parts) >= 3 and parts[-1].endswith(".gguf") and all(parts):
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
        return CatalogModel(filename, repo, filename, 0.0, 0.0, "")
    raise PullError(f"unknown model {target!r}: give a name from `kbagent models recommend` or OWNER/REPO/FILE.gguf")


def pull(target: str, models_dir: Path, tqdm_class: Any = None) -> Pulled:
    """Downloads `target` into `models_dir` (kept as it is when already there and intact); raises PullError."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url

    entry = resolve(target)
    if constants.is_offline_mode():
        raise PullError(
            "offline mode is on (HF_HUB_OFFLINE=1): unset it to download, or copy a GGUF into " + str(models_dir)
        )
    try:
        published = get_hf_file_metadata(hf_hub_url(entry.repo, entry.filename)).etag or ""
        hub_sha = published if SHA256.fullmatch(published) else None
        if entry.sha256 and hub_sha and hub_sha != entry.sha256:
            raise PullError(f"{entry.spec} on the hub is not the file the catalogue names (sha256 {hub_sha[:12]}…)")
        path = Path(hf_hub_download(entry.repo, entry.filename, local_dir=models_dir, tqdm_class=tqdm_class))
    except PullError:
        raise
    except Exception as exc:
        raise PullError(_reason(exc, entry, constants.ENDPOINT)) from exc
    expected = entry.sha256 or hub_sha
    digest = sha256_of(path)
    if expected is None:
        raise PullError(f"{entry.spec}: the hub published no sha256 for it, so it can't be checked; it is at {path}")
    if digest != expected:
        path.unlink()
        raise PullError(
            f"{entry.spec}: checksum mismatch (got {digest[:12]}…, expected {expected[:12]}…); the file was deleted"
        )
    return Pulled(path, digest, "catalogue" if entry.sha256 else "hub")


def _reason(exc: Exception, entry: CatalogModel, endpoint: str) -> str:
    """One line for what huggingface_hub raised: unreachable, not found, or anything else by its class."""
    import httpx
    from huggingface_hub import errors

    if isinstance(exc, httpx.TransportError | errors.OfflineModeIsEnabled | errors.LocalEntryNotFoundError):
        return f"can't reach the Hugging Face hub at {endpoint} ({type(exc).__name__}); are you online?"
    if isinstance(exc, errors.RepositoryNotFoundError | errors.EntryNotFoundError | errors.RevisionNotFoundError):
        return f"{entry.spec} is not on the hub (or is gated: log in with `hf auth login`)"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{entry.spec}: download failed ({type(exc).__name__}: {first})"[:300]


def pulled_models(models_dir: Path) -> list[Path]:
    """The GGUF files in the models folder (pulled, joined or copied there), hidden folders skipped."""
    if not models_dir.is_dir():
        return []
    found = models_dir.rglob("*.gguf")
    return sorted(
        p for p in found if p.is_file() and not any(s.startswith(".") for s in p.relative_to(models_dir).parts)
    )
