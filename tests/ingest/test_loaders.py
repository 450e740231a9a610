"""Each file type loads into clean text with its metadata; each kind of bad file fails with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.loaders import LoadError, load
from tests.support.files import write_corpus, write_docx, write_pdf


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, Path]:
    return write_corpus(tmp_path)


def _load(path: Path):  # type: ignore[no-untyped-def]
    return load(path, path.read_bytes())


def test_markdown_title_and_text(corpus: dict[str, Path]) -> None:
    [doc] = _load(corpus["md"])
    assert doc.metadata["title"] == "Garden Handbook"
    assert "Zorblat Crimson" in doc.page_content


def test_text_title_from_first_line(corpus: dict[str, Path]) -> None:
    [doc] = _load(corpus["txt"])
    assert doc.metadata["title"] == "Weather log"


def test_html_drops_clutter_keeps_structure(corpus: dict[str, Path]) -> None:
    [doc] = _load(corpus["html"])
    assert doc.metadata["title"] == "Lentil Soup"
    text = doc.page_content
    assert "## Method" in text and "- 200 g red lentils" in text
    for clutter in ("tracking", "navigation link", "Copyright footer"):
        assert clutter not in text


def test_pdf_pages_numbered(corpus: dict[str, Path]) -> None:
    docs = _load(corpus["pdf"])
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert "QX-7781" in docs[1].page_content
    assert docs[0].metadata["title"] == "Pump Manual"


def test_docx_headings_and_table(corpus: dict[str, Path]) -> None:
    [doc] = _load(corpus["docx"])
    assert doc.metadata["title"] == "Kettle Guide"
    assert "## Warranty" in doc.page_content
    assert "| K-200 | 2200 |" in doc.page_content


def test_csv_rows_keep_column_names(corpus: dict[str, Path]) -> None:
    [doc] = _load(corpus["csv"])
    assert "item: saffron threads; price: 14.90; unit: gram" in doc.page_content


def test_csv_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1\n2,3,4\n")
    [doc] = _load(path)
    assert "a: 1" in doc.page_content and "column 3: 4" in doc.page_content


def test_json_items_become_sections_of_path_value_lines(tmp_path: Path) -> None:
    """Each top-level item is a section named by its title/name/id; nested values read `a.b[0].c: value`."""
    from ingest.chunking import Chunker, ChunkingConfig

    data = [{"name": "Ferry", "times": ["07:40", "09:10"], "stops": [{"pier": 9, "open": True}]}]
    data += [{"id": f"row-{n}", "note": "word " * 60} for n in range(40)]  # a large array, many chunks
    path = tmp_path / "timetable.json"
    path.write_text(json.dumps(data))
    [doc] = load(path, path.read_bytes())
    assert "## 1. Ferry\nname: Ferry\ntimes: 07:40, 09:10\nstops[0].pier: 9\nstops[0].open: true" in doc.page_content
    chunks = Chunker(ChunkingConfig()).split([doc], doc.metadata["title"])
    last = [c for c in chunks if "row-39" in c.page_content]
    assert last and all(c.page_content.startswith("timetable › 41. row-39") for c in last)  # the item it is from
    lines = tmp_path / "log.jsonl"
    lines.write_text('{"level": "info", "msg": "started"}\n\n{"msg": "done", "extra": {"ms": 12}}\n')
    [doc] = load(lines, lines.read_bytes())
    assert "## item 1\nlevel: info\nmsg: started" in doc.page_content and "extra.ms: 12" in doc.page_content
    assert "## top" in load(path, b'{"top": {"k": null}}')[0].page_content


def _mail(subject: str, html: bool = False, attachment: bool = False) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "Ada <ada@example.org>", "crew@example.org"
    message["Date"] = "Mon, 06 May 2024 09:30:00 +0000"
    if html:
        message.set_content("<html><body><h1>Notice</h1><p>The ferry leaves at <b>07:40</b>.</p></body></html>", "html")
    else:
        message.set_content("The bakery opens at 06:30 on Saturdays.")
    if attachment:
        message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="rota.pdf")
    return message.as_bytes()


def test_email_messages_read_with_subject_sender_date_body_and_attachment_names(tmp_path: Path) -> None:
    path = tmp_path / "note.eml"
    path.write_bytes(_mail("Bakery hours", attachment=True))
    [doc] = load(path, path.read_bytes())
    assert doc.metadata["title"] == "Bakery hours"
    text = doc.page_content
    assert text.startswith("# Bakery hours\nFrom: Ada <ada@example.org>\nTo: crew@example.org\nDate: Mon, 06 May")
    assert "opens at 06:30 on Saturdays" in text and "Attachments: rota.pdf" in text
    box = tmp_path / "crew.mbox"
    box.write_bytes(b"From ada Mon May  6 09:30:00 2024\n" + _mail("Bakery hours") +
                    b"\nFrom ada Tue May  7 10:00:00 2024\n" + _mail("Ferry notice", html=True))  # fmt: skip
    [doc] = load(box, box.read_bytes())
    assert "## Bakery hours" in doc.page_content and "## Ferry notice" in doc.page_content
    assert "The ferry leaves at **07:40**" in doc.page_content or "The ferry leaves at 07:40" in doc.page_content
    assert "<b>" not in doc.page_content  # the HTML body went through the page converter


def test_latin1_and_utf16_text_are_decoded(tmp_path: Path) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Café crème brûlée à la façon de Zoé, très délicieux et très sucré.".encode("latin-1"))
    assert "brûlée" in _load(latin)[0].page_content
    utf16 = tmp_path / "wide.txt"
    utf16.write_text("Überall schöne Grüße", encoding="utf-16")
    assert "schöne" in _load(utf16)[0].page_content


BAD = {
    "empty.md": (b"", "empty file"),
    "blank.txt": (b"   \n\n  ", "empty file"),
    "binary.txt": (bytes(range(256)) * 20, "binary"),
    "image.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 100, "binary"),
    "broken.pdf": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nthis is not a pdf", "PDF"),
    "fake.docx": (b"PK\x03\x04 not really a zip", "not a .docx"),
    "notes.xyz": (b"some text", "unsupported file type"),
    "only-header.csv": (b"a,b,c\n", "no data rows"),
    "broken.json": (b'{"a": 1,,}', "not valid JSON"),
    "deep.json": (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    "broken.jsonl": (b'{"a": 1}\n{oops\n', "line 2 is not valid JSON"),
    "notmail.eml": (b"just some text\nand more\n", "not an e-mail message"),
    "empty.mbox": (b"From nobody Mon Jan  1 00:00:00 2024\n\n", "no e-mail messages"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_fail_with_one_line(tmp_path: Path, name: str) -> None:
    raw, expected = BAD[name]
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(LoadError) as info:
        load(path, raw)
    message = str(info.value)
    assert expected.lower() in message.lower()
    assert "\n" not in message


def test_truncated_pdf(tmp_path: Path) -> None:
    good = write_pdf(tmp_path / "good.pdf", ["Some text on page one", "more"])
    raw = good.read_bytes()[: len(good.read_bytes()) // 3]
    with pytest.raises(LoadError, match="PDF"):
        load(tmp_path / "cut.pdf", raw)


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "secret.pdf", ["classified"], password="hunter2")
    with pytest.raises(LoadError, match="encrypted"):
        _load(path)


def test_docx_zip_bomb_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.loaders.archive as archive

    path = write_docx(tmp_path / "big.docx", "Big", {"A": "x" * 50_000})
    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED", 10_000)
    with pytest.raises(LoadError, match="zip bomb"):
        _load(path)


@pytest.mark.parametrize("name", ["about/visit.html", "policies/tool-library.html"])
def test_saved_page_converts_like_the_fetched_page(name: str) -> None:
    from ingest.web.extract import html_to_page
    from tests.support.paths import SAMPLES

    raw = (SAMPLES / name).read_bytes()
    [doc] = load(SAMPLES / name, raw)
    fetched = html_to_page(raw.decode("utf-8"), f"https://harborview.example/{name}")
    assert doc.page_content == fetched.markdown and doc.metadata["title"] == fetched.title
    assert "Home" not in doc.page_content.splitlines()  # the navigation is dropped


def test_short_html_falls_back_to_main_element(tmp_path: Path) -> None:
    path = tmp_path / "short.html"
    path.write_text("<nav><a href='/'>Home</a></nav><main><h2>Hours</h2><ul><li>Open at nine</li></ul></main>")
    [doc] = _load(path)
    assert "## Hours" in doc.page_content and "- Open at nine" in doc.page_content and "Home" not in doc.page_content


@pytest.mark.parametrize(
    ("raw", "declared", "expected", "encoding"),
    [
        ("\ufeffcafé".encode("utf-16-le"), "iso-8859-1", "café", "utf-16"),  # a BOM beats a declaration
        ("<meta charset='koi8-r'><p>café".encode("cp1252"), "iso-8859-1", "café", "windows-1252"),  # header first
        (
            "<meta http-equiv=Content-Type content='text/html; charset=koi8-r'><p>Привет".encode("koi8-r"),
            None,
            "Привет",
            "koi8-r",
        ),
        (("Grüße aus Köln, schöne Straße. " * 20).encode()[:100] + b"\xff" + b" more", "utf-8", "Köln", "utf-8"),
    ],
)
def test_decoding_order(raw: bytes, declared: str | None, expected: str, encoding: str) -> None:
    from ingest.text import decode

    text, used = decode(raw, declared, html=True)
    assert expected in text and used == encoding


def test_meta_charset_is_read_within_its_window() -> None:
    from ingest.text.decoding import META_WINDOW, declared_charsets

    meta = b"<meta charset=koi8-r>"
    assert declared_charsets(b" " * (META_WINDOW - len(meta)) + meta, None, html=True) == ["koi8-r"]
    assert declared_charsets(b" " * META_WINDOW + meta, None, html=True) == []
    assert declared_charsets(meta, None, html=False) == []
