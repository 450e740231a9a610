"""EPUB books: the chapters in reading order (the package's spine), each through the HTML converter that saved
pages use, each a document of its own so a citation names the chapter (metadata `location` "chapter N").

EPUB is a zip of XHTML files plus an XML package file listing them; reading that list by hand is a few lines
with lxml, where an EPUB library would add a dependency for the same thing. DRM-protected books (content listed
in META-INF/encryption.xml) are refused with one line rather than read as noise.
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from langchain_core.documents import Document

from ingest.loaders.archive import open_zip
from ingest.loaders.errors import LoadError
from ingest.text import decode, html_to_markdown
from ingest.text.reading import Reading

if TYPE_CHECKING:
    from lxml.etree import _Element

CONTAINER = "META-INF/container.xml"
ENCRYPTION = "META-INF/encryption.xml"
CHAPTER_TYPES = ("application/xhtml+xml", "text/html")
NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
}


def load_epub(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    with open_zip(raw, "epub") as archive:
        try:
            package_path = _package_path(archive)
            package = _xml(archive.read(package_path))
            chapters = _spine(package, posixpath.dirname(package_path))
            _refuse_drm(archive, chapters)
            title = " ".join(package.findtext(".//dc:title", default="", namespaces=NS).split()) or path.stem
            pages = [archive.read(name) for name in chapters if name in archive.NameToInfo]
        except (KeyError, ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise LoadError(f"corrupt or not an .epub file ({type(exc).__name__}: {str(exc)[:80]})") from exc
    documents: list[Document] = []
    for content in pages:
        if reading.full:
            break
        html, _ = decode(content, html=True)
        page = html_to_markdown(html)
        if not page.markdown.strip():
            continue
        text = reading.take(page.markdown)
        number = len(documents) + 1
        markdown = text if text.startswith("#") else f"# Chapter {number}\n\n{text}"
        metadata = {"title": title, "location": f"chapter {number}", "format": "markdown"}
        documents.append(Document(page_content=markdown, metadata=metadata))
    if not documents:
        raise LoadError("no text in any chapter of the EPUB")
    return documents


def _xml(data: bytes) -> _Element:
    """Parsed without entity expansion or network access: a package file is untrusted input."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"bad XML: {exc}") from exc


def _package_path(archive: zipfile.ZipFile) -> str:
    container = _xml(archive.read(CONTAINER))
    rootfile = container.find(".//c:rootfile", NS)
    if rootfile is None or not rootfile.get("full-path"):
        raise ValueError("no package file named in META-INF/container.xml")
    return str(rootfile.get("full-path"))


def _spine(package: _Element, folder: str) -> list[str]:
    """The archive names of the spine's XHTML documents, in reading order (non-linear ones last, as readers do),
    without the EPUB 3 table of contents (a list of links, where a search would only find chapter titles)."""
    manifest = {
        item.get("id"): item
        for item in package.iterfind(".//opf:manifest/opf:item", NS)
        if item.get("media-type") in CHAPTER_TYPES and item.get("href") and not _is_nav(item)
    }
    refs = list(package.iterfind(".//opf:spine/opf:itemref", NS))
    ordered = [r for r in refs if r.get("linear") != "no"] + [r for r in refs if r.get("linear") == "no"]
    names: list[str] = []
    for ref in ordered:
        item = manifest.get(ref.get("idref"))
        if item is not None:
            name = posixpath.normpath(posixpath.join(folder, unquote(item.get("href").split("#")[0])))
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("the package lists no chapters")
    return names


def _is_nav(item: _Element) -> bool:
    return "nav" in (item.get("properties") or "").split()


def _refuse_drm(archive: zipfile.ZipFile, chapters: list[str]) -> None:
    if ENCRYPTION not in archive.NameToInfo:
        return
    encrypted = {
        unquote(ref.get("URI") or "") for ref in _xml(archive.read(ENCRYPTION)).iterfind(".//enc:CipherReference", NS)
    }
    if encrypted & set(chapters):
        raise LoadError("DRM-protected EPUB (its chapters are encrypted)")
