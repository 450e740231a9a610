"""E-mail: a `.eml` message, or every message of an `.mbox` file, as Markdown: the subject as heading; from, to
and date as lines a search can find; the plain body (or the HTML body through the page converter); and the
names of its attachments. (Attachments are named, not yet ingested as sources of their own.)"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.text import html_to_markdown

MBOX_SEPARATOR = re.compile(rb"^From .*\r?\n", re.MULTILINE)  # each message starts with a "From " line
HEADERS = ("from", "to", "cc", "date")


def load_eml(path: Path, raw: bytes) -> list[Document]:
    message = _parse(raw)
    if message is None:
        raise LoadError("not an e-mail message (no From or Subject header)")
    subject = _subject(message) or path.stem
    return [Document(page_content=_markdown(message, "#"), metadata={"title": subject, "format": "markdown"})]


def load_mbox(path: Path, raw: bytes) -> list[Document]:
    messages = [m for m in (_parse(part) for part in MBOX_SEPARATOR.split(raw) if part.strip()) if m is not None]
    if not messages:
        raise LoadError("no e-mail messages in the mbox file")
    title = path.stem.replace("_", " ").replace("-", " ")
    body = "\n\n".join([f"# {title}", *(_markdown(m, "##") for m in messages)])
    return [Document(page_content=body, metadata={"title": title, "format": "markdown"})]


def _parse(raw: bytes) -> EmailMessage | None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not (message.get("from") or message.get("subject")):
        return None
    return message


def _subject(message: EmailMessage) -> str:
    return " ".join(str(message.get("subject") or "").split())


def _markdown(message: EmailMessage, level: str) -> str:
    lines = [f"{level} {_subject(message) or '(no subject)'}"]
    lines += [f"{name.capitalize()}: {' '.join(str(message[name]).split())}" for name in HEADERS if message.get(name)]
    part = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if part is not None:
        try:
            content = part.get_content()
        except (LookupError, ValueError):  # an unknown charset or a broken encoding: the rest still reads
            content = ""
        text = html_to_markdown(content).markdown if part.get_content_type() == "text/html" else str(content)
    lines.append("")
    lines.append(text.strip() or "(no text)")
    names = [p.get_filename() for p in message.iter_attachments() if p.get_filename()]
    if names:
        lines.append(f"\nAttachments: {', '.join(str(n) for n in names)}")
    return "\n".join(lines)
