"""Twenty-odd kinds of bad input, generated here: each gets one line saying why, everything else ingests."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from ingest import IngestConfig, build_ingestor
from knowledge_base import KnowledgeBase
from tests.support.files import write_corpus, write_docx, write_pdf


def _bad_corpus(root: Path) -> dict[str, str]:
    """file name → the words its one-line reason must contain ('' = must ingest fine)."""
    bad = root / "bad"
    bad.mkdir(parents=True)
    expect: dict[str, str] = {}

    def put(name: str, data: bytes, reason: str) -> Path:
        path = bad / name
        path.write_bytes(data)
        expect[name] = reason
        return path

    good_pdf = write_pdf(root / "template.pdf", ["page one text", "page two text"]).read_bytes()
    put("truncated.pdf", good_pdf[: len(good_pdf) // 2], "pdf")
    write_pdf(bad / "encrypted.pdf", ["secret"], password="pw")
    expect["encrypted.pdf"] = "encrypted"
    put("not-a-pdf.pdf", b"GIF89a" + os.urandom(300), "pdf")
    put("zero.md", b"", "empty file")
    put("zero.txt", b"", "empty file")
    put("whitespace.txt", b" \n\t\n ", "empty file")
    put("binary.txt", os.urandom(5000), "binary")
    put("nul-bytes.md", b"# Title\n\x00\x00\x00 text", "binary")
    put("latin1.txt", "Ça coûte très cher, déjà vu à Montréal, naïve façade.".encode("latin-1"), "")
    put("utf16.txt", "Grüße aus Köln, schöne Straße.".encode("utf-16"), "")
    put("big.txt", (b"lorem ipsum dolor sit amet " * 2_000_000)[: 50 * 2**20], "")  # cut, with a note
    put("nested.html", b"<html><body>" + b"<div>" * 20_000 + b"deep text" + b"</div>" * 20_000 + b"</body></html>", "")
    write_docx(bad / "bomb.docx", "Bomb", {"A": "a"})
    with zipfile.ZipFile(bad / "bomb.docx", "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/zeros.bin", b"\0" * (220 * 2**20))
    expect["bomb.docx"] = "zip bomb"
    put("fake.docx", b"PK\x03\x04" + os.urandom(200), "not a .docx")
    put("ragged.csv", b"a,b\n1\n2,3,4\n,,\n5,6\n", "")
    put("header-only.csv", b"a,b,c\n", "no data rows")
    put("name\nwith newline.md", b"# Newline\n\nA file whose name has a newline.", "")
    put("non-ascii-名前-ñ.md", b"# Unicode\n\nA file with a non-ASCII name.", "")
    put("original.md", b"# Twin\n\nThe same bytes under two names.", "")
    put("zz-copy-of-original.md", b"# Twin\n\nThe same bytes under two names.", "same content as")
    put("unreadable.md", b"# Locked\n\nno access", "permission denied")
    put("image.png", b"\x89PNG\r\n\x1a\n" + os.urandom(100), "not a readable image")
    put("image.gif", b"GIF89a" + os.urandom(100), "unsupported file type")
    (bad / "loop-a.md").symlink_to(bad / "loop-b.md")
    (bad / "loop-b.md").symlink_to(bad / "loop-a.md")
    expect["loop-a.md"] = expect["loop-b.md"] = "not a regular file"
    (bad / "dir-loop").mkdir()
    (bad / "dir-loop" / "self").symlink_to(bad / "dir-loop")
    (bad / "dangling.md").symlink_to(bad / "nowhere.md")
    expect["dangling.md"] = "not a regular file"
    return expect


@pytest.mark.slow
def test_bad_input_corpus(tmp_path: Path, embedded_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "kb"
    good = write_corpus(root)
    expect = _bad_corpus(root)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "unreadable.md":  # tests run as root, where chmod 000 doesn't stop reads
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = build_ingestor(IngestConfig(max_text_mb=0.05), embedded_kb).run([root])
    outcomes = {Path(o.source).name: o for o in report.outcomes}
    kinds = 0
    for name, reason in expect.items():
        outcome = outcomes[name]
        if reason:
            kinds += 1
            assert reason.lower() in outcome.message.lower(), (name, outcome)
            assert outcome.status in ("failed", "skipped")
            assert "\n" not in outcome.message
        else:
            assert outcome.status == "added", (name, outcome)
    assert len(expect) >= 25 and kinds >= 15  # kinds tried; kinds refused with a reason
    assert outcomes["big.txt"].notes == ["text cut at 0.05 M characters, the limit per file (KBAGENT_MAX_TEXT_MB)"]
    for path in good.values():
        assert outcomes[path.name].status == "added"
    assert outcomes["template.pdf"].status == "added"
    hits = embedded_kb.search("déjà vu à Montréal", k=3)
    assert any(h.metadata["source"].endswith("latin1.txt") for h in hits)
    assert report.succeeded
