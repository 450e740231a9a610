"""E-mail: a `.eml` message, or every message of an `.mbox` file, as Markdown: the subject as heading; from, to
and date as lines a search can find; the plain body (or the HTML body through the page converter); and the
names of its attachments. An attachment of a type kbagent reads (a PDF, a deck, a sheet...) is read by its own
loader into documents of the message's source, cited as "(attachment NAME)" or "(attachment NAME, p. 2)": one
file stays one source, so re-ingest, --sync and delete treat a message and its attachments as one. One that
cannot be read is named in the file's ingest line and the rest goes on. A message and its attachments share one
character budget (the file's `Reading`): three attachments must not each bring their own allowance."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path, PurePath

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.text import html_to_markdown
from ingest.text.reading import Reading

MBOX_SEPARATOR = re.compile(rb"^From .*\r?\n", re.MULTILINE)  # each message starts with a "From " line
HEADERS = ("from", "to", "cc", "date")
DEMOTED = re.compile(r"(?m)^(#{1,5}) ")
NOT_HEADING = re.compile(r"(?m)^#")
NOT_OPENED = (".eml", ".mbox")  # a message inside a message is named, not read: no nesting without end


def load_eml(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    message = _parse(raw)
    if message is None:
        raise LoadError("not an e-mail message (no From or Subject header)")
    subject = _subject(message) or path.stem
    text = reading.take(_markdown(message, "#"))
    documents = [Document(page_content=text, metadata={"title": subject, "format": "markdown"})]
    return _with_attachments(documents, [message], reading)


def load_mbox(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    title = path.stem.replace("_", " ").replace("-", " ")
    messages, texts = [], [f"# {title}"]
    for part in MBOX_SEPARATOR.split(raw):
        message = _parse(part) if part.strip() and not reading.full else None
        if message is not None:
            messages.append(message)
            texts.append(reading.take(_markdown(message, "##")))
    if not messages:
        raise LoadError("no e-mail messages in the mbox file")
    body = "\n\n".join(texts)
    documents = [Document(page_content=body, metadata={"title": title, "format": "markdown"})]
    return _with_attachments(documents, messages, reading)


def _with_attachments(documents: list[Document], messages: list[EmailMessage], reading: Reading) -> list[Document]:
    """The messages' documents, then their readable attachments' documents (from the same budget); unreadable
    ones in a note."""
    from ingest.loaders import is_supported, load  # the registry imports this module

    problems = []
    for message in messages:
        for part in message.iter_attachments():
            name = PurePath(str(part.get_filename() or "")).name  # a name, never a path
            if not name or not is_supported(Path(name)) or Path(name).suffix.lower() in NOT_OPENED:
                continue
            if reading.full:
                break
            try:
                content = part.get_content()
                raw = content.encode() if isinstance(content, str) else bytes(content)
                documents.extend(_attached(name, load(Path(name), raw, reading)))
            except (LoadError, LookupError, ValueError) as exc:
                problems.append(f"attachment {name} not read: {exc}")
    if problems:
        documents[0].metadata["note"] = "; ".join(problems)
    return documents


def _attached(name: str, documents: list[Document]) -> list[Document]:
    """An attachment's documents under a heading naming it, each cited as "attachment NAME[, where]"."""
    out = []
    for document in documents:
        meta = document.metadata
        where = f"p. {meta['page']}" if meta.get("page") else str(meta.get("location") or "")
        # Markdown: its headings one level down, under the attachment's; text and rows: no line reads as one.
        text = document.page_content
        text = DEMOTED.sub(r"#\1 ", text) if meta.get("format") == "markdown" else NOT_HEADING.sub(r"\\#", text)
        heading = f"# Attachment {name}" + (f" ({where})" if where else "")
        metadata = {"location": f"attachment {name}" + (f", {where}" if where else ""), "format": "markdown"}
        out.append(Document(page_content=f"{heading}\n\n{text}", metadata=metadata))
    return out


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
