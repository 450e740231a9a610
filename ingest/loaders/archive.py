"""Zip-based formats (docx, pptx, xlsx, epub): the one check before a reader opens the archive.

Python's zipfile never inflates a member past the size its header declares (it stops there and the CRC check
fails), so adding up the declared sizes bounds what any reader can expand: a zip bomb is refused before any
of it is read. An encrypted Office file is not a zip at all but an OLE compound file holding the encrypted zip.
"""

from __future__ import annotations

import io
import zipfile

from ingest.loaders.errors import LoadError

MAX_UNCOMPRESSED = 200 * 1024 * 1024
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
    return archive
