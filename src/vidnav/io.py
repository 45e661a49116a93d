"""Small file helpers: atomic writes (nothing half-written survives a crash) and gz JSON."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vidnav.errors import VidNavError

_UMASK = os.umask(0)
os.umask(_UMASK)


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
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
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


def files_sha256(*paths: str | os.PathLike) -> str:
    """One SHA-256 over the contents of ``paths`` (a missing file counts as absent, not as empty): the
    fingerprint an output folder keeps of its inputs, so results of two different inputs are never mixed."""
    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        if not path.exists():
            h.update(b"\0absent\0")
            continue
        h.update(str(path.stat().st_size).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@contextmanager
def writer_lock(folder: str | os.PathLike, what: str, name: str = ".writer.lock"):
    """Hold an exclusive lock on ``folder/name`` while a resumable job writes into ``folder``.

    A second job started on the same folder fails at once instead of reading a half-written last line as torn
    (and rewriting the file under the first job) or appending the same records twice. The operating system drops
    the lock when its process ends, however it ends, so a killed job leaves nothing to clean up. Processes that
    write one folder together (the ranks of a distributed run) each take a lock of their own ``name``.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        f = open(folder / name, "ab")
    except (FileExistsError, NotADirectoryError):
        file = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        where = f"{file} is a file" if file == folder else f"{file} is a file, not a folder"
        raise VidNavError(f"--out {folder}: {where}; give a folder") from None
    except PermissionError as e:
        raise VidNavError(f"--out {folder}: cannot write there ({e.strerror}); give a writable folder") from None
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise VidNavError(
                f"{folder} is being written by another {what} job; wait for it to end (or stop it), "
                "or give this one another --out"
            ) from None
        yield
    finally:
        f.close()


def read_jsonl_records(
    path: str | os.PathLike,
    key: str,
    what: str = "records file",
    repair: bool = False,
    fix: str = "delete the file to start over",
) -> list[dict]:
    """Records of an append-only JSONL file written by ``JsonlAppender``; each must hold ``key``.

    A torn last line (the writer was killed mid-line, or is writing it now) is skipped; a bad line anywhere
    else is an error naming the file and line. ``repair`` (only for the file's writer, under its
    ``writer_lock``) also rewrites the file without the torn line, so appending resumes cleanly. A reader
    must not: a running writer would go on appending to the replaced file. ``fix`` ends the error message.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    good, torn = [], False
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or key not in rec:
                raise ValueError
        except ValueError:
            if i == last and not path.read_bytes().endswith(b"\n"):
                torn = True
                continue
            raise VidNavError(
                f"{path}: line {i + 1} is not a valid {what} line (needs a JSON object with {key!r}); {fix}"
            ) from None
        good.append(rec)
    if torn and repair:
        atomic_write_bytes(path, b"".join(json.dumps(r).encode() + b"\n" for r in good))
    return good


class JsonlAppender:
    """Appends one JSON object per line, flushed and fsynced per record (crash-safe with the reader above)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "ab")

    def write(self, rec: dict) -> None:
        self._f.write(json.dumps(rec).encode() + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
