"""Zip-based formats (docx, pptx, xlsx, epub): the one check before a reader opens the archive.

Python's zipfile never inflates a member past the size its header declares (it stops there and the CRC check
fails), so adding up the declared sizes bounds what any reader can expand: a zip bomb is refused before any
of it is read. That bounds the XML, not the text a reader makes of it (every cell of a sheet may point at one
long shared string): the file's character budget (`ingest.text.reading`) bounds that while it is read, and the
worker's memory limit what the parsers hold. An encrypted Office file is not a zip at all but an OLE compound
file holding the encrypted zip.
"""

from __future__ import annotations

import io
import zipfile

from ingest.loaders.errors import LoadError

MAX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_MEMBERS = 20_000  # a document has dozens, a book with its images a few thousand
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # compound file: legacy .doc/.xls/.ppt, or encrypted OOXML


def open_zip(raw: bytes, kind: str) -> zipfile.ZipFile:
    """The archive, or LoadError with one line: encrypted, not a zip, truncated, or too large expanded."""
    if raw.startswith(OLE_MAGIC):
        raise LoadError(f"encrypted (password-protected) or old binary Office file, not a .{kind} archive")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise LoadError(f"corrupt or truncated .{kind} file, or not a .{kind} file ({exc})"[:200]) from exc
    if total > MAX_UNCOMPRESSED:
        archive.close()
        raise LoadError(f".{kind} expands to {total // 2**20} MB (zip bomb?), more than {MAX_UNCOMPRESSED // 2**20} MB")
    if len(archive.infolist()) > MAX_MEMBERS:
        archive.close()
        raise LoadError(f".{kind} holds {len(archive.infolist()):,} files, more than {MAX_MEMBERS:,} (zip bomb?)")
    return archive
