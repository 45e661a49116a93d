"""Small file helpers: atomic writes (nothing half-written survives a crash) and gz JSON."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from vidnav.errors import VidNavError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, sort_keys=False, ensure_ascii=False)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Atomically write JSON; ``.gz`` paths are gzip-compressed (with a fixed mtime, so bytes repeat)."""
    text = dumps_json(obj, indent=indent)
    path = Path(path)
    if path.suffix == ".gz":
        atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read JSON or gzipped JSON; a missing, truncated or malformed file raises VidNavError naming it."""
    path = Path(path)
    if not path.exists():
        raise VidNavError(f"{what} not found: {path}")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise VidNavError(f"{what} {path} is truncated or not gzip: {e}; rebuild or re-download it") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VidNavError(f"{what} {path} is not valid JSON ({e}); rebuild or re-download it") from e
