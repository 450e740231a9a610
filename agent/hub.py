"""`kbagent models pull`: one GGUF file from the Hugging Face hub into the models folder, checked against its
sha256, through huggingface_hub (it honours HF_ENDPOINT, shows a progress bar and resumes a dropped transfer).
The only code here that downloads; nothing else in kbagent reaches the hub."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.catalog import CatalogModel, find
from agent.embedded_model import matches, remember, sha256_of
from kbagent.errors import KbagentError

if TYPE_CHECKING:
    from tqdm import tqdm

SHA256 = re.compile(r"[0-9a-f]{64}")
# Where a file is downloaded and stays until its sha256 is checked: a hidden folder inside the models folder (a
# rename moves it in), which `kbagent models` does not list and app users may not load from (`_inside` in
# agent.models).
UNCHECKED = ".unchecked"


class PullError(KbagentError):
    """The file could not be pulled (offline, not found, failed its checksum): one line for the user."""


@dataclass(frozen=True)
class Pulled:
    path: Path
    sha256: str
    checked_against: str  # where the expected sha256 came from: "catalogue", "hub" or "given"


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


def pull(target: str, models_dir: Path, tqdm_class: type[tqdm] | None = None, sha256: str | None = None) -> Pulled:
    """Downloads `target` into `models_dir` (kept as it is when already there and intact), checked against
    `sha256` when given, else the catalogue's or the hub's; raises PullError. The file is downloaded aside
    (`UNCHECKED`) and moved in only once it is checked: a file nothing can be checked against stays aside."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url

    entry = resolve(target)
    if sha256 is not None and not SHA256.fullmatch(sha256 := sha256.strip().lower()):
        raise PullError(f"--sha256 takes the file's sha256 as 64 hex digits, not {sha256[:80]!r}")
    if constants.is_offline_mode():
        raise PullError(
            "offline mode is on (HF_HUB_OFFLINE=1): unset it to download, or copy a GGUF into " + str(models_dir)
        )
    target_path = models_dir / entry.filename
    try:
        published = get_hf_file_metadata(hf_hub_url(entry.repo, entry.filename)).etag or ""
        hub_sha = published if SHA256.fullmatch(published) else None
        if entry.sha256 and hub_sha and hub_sha != entry.sha256:
            raise PullError(f"{entry.spec} on the hub is not the file the catalogue names (sha256 {hub_sha[:12]}…)")
        expected, source = _expected(sha256, entry.sha256, hub_sha)
        if expected and target_path.is_file() and matches(target_path, expected):
            return Pulled(target_path, expected, source)
        unchecked = models_dir / UNCHECKED
        path = Path(hf_hub_download(entry.repo, entry.filename, local_dir=unchecked, tqdm_class=tqdm_class))
    except PullError:
        raise
    except Exception as exc:
        raise PullError(_reason(exc, entry, constants.ENDPOINT)) from exc
    if expected is None:
        raise PullError(
            f"{entry.spec}: the hub published no sha256 for it, so it can't be checked and was not put in the models "
            f"folder (it is kept aside at {path}); with its sha256 from a source you trust, run: kbagent models pull "
            f"{target} --sha256 HEX"
        )
    digest = sha256_of(path)
    if digest != expected:
        path.unlink()
        raise PullError(
            f"{entry.spec}: checksum mismatch (got {digest[:12]}…, expected {expected[:12]}…); the file was deleted"
        )
    target_path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target_path)
    remember(target_path, digest)
    return Pulled(target_path, digest, source)


def _expected(given: str | None, catalogue: str | None, hub: str | None) -> tuple[str | None, str]:
    """The sha256 to check against, and where it came from: the user's, else the catalogue's, else the hub's."""
    if given:
        return given, "given"
    if catalogue:
        return catalogue, "catalogue"
    return hub, "hub"


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
