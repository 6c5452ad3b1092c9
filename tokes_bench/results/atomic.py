"""Atomic file writes: a uniquely named temp file in the target's directory, then os.replace.

A reader (or a second writer) therefore sees either the old file or the complete new one, never a
half-written file, and two processes writing the same path at once cannot clobber each other's
temp files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _write_payload(f, data: bytes) -> None:
    """Write all of `data` into the open temp file (a seam for crash tests)."""
    f.write(data)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; on any error the temp file is removed and `path` untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_payload(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text variant of `atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))
