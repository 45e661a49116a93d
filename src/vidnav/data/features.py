"""An append-only, memory-mapped store of frozen vision features (fp16), keyed by trajectory.

The vision tower is frozen, so each rendered frame is encoded once and training epochs read the
feature grids from here instead of re-rendering and re-encoding video. Layout of a store folder:

    meta.json          feature shape (N, C), dtype, the encoder's name
    shard-00000.f16    raw little-endian fp16 rows of shape (N, C), appended
    index.jsonl        one line per trajectory: {"key", "shard", "offset", "length"}

Crash safety: rows are flushed before their index line is appended; on open, a half-written index
line is dropped and bytes past the last indexed row are cut off, so an interrupted collection
resumes where it stopped without losing or duplicating anything. Damage a kill cannot leave (a bad line
before the last, a shard shorter than its index says, or missing) is refused on open, never cut away.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from vidnav.errors import VidNavError
from vidnav.io import dumps_json, read_json, read_jsonl_records, write_json

SHARD_BYTES = 2 * 1024**3  # start a new shard file after ~2 GB


class FeatureStore:
    def __init__(self, root: str | os.PathLike, shape: tuple[int, int] | None = None, encoder: str | None = None):
        """Open (or create, when ``shape`` is given) a store at ``root``.

        Opened with ``shape`` (by its writer, under the folder's ``writer_lock``), the store repairs what a
        killed writer left: a torn index line and rows past the last index line are cut. Opened without it
        (to read), it only ignores them: a writer may be between writing a trajectory's rows and its line.
        """
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if meta_path.exists():
            meta = read_json(meta_path, what="feature store meta")
            self.shape = tuple(meta["shape"])
            self.encoder = meta.get("encoder")
            if shape is not None and tuple(shape) != self.shape:
                raise VidNavError(
                    f"feature store {self.root} holds features of shape {self.shape}, not {tuple(shape)}; "
                    "collect into another --out folder for a different vision tower"
                )
            if encoder is not None and self.encoder is not None and encoder != self.encoder:
                raise VidNavError(
                    f"feature store {self.root} was made by encoder {self.encoder!r}, not {encoder!r}; "
                    "collect into another --out folder"
                )
        else:
            if shape is None:
                raise VidNavError(f"no feature store at {self.root} (missing meta.json); collect features first")
            self.root.mkdir(parents=True, exist_ok=True)
            self.shape, self.encoder = tuple(shape), encoder
            write_json(meta_path, {"shape": list(self.shape), "dtype": "float16", "encoder": encoder})
        self.row_bytes = int(np.prod(self.shape)) * 2
        self.index: dict[str, tuple[int, int, int]] = {}
        self.writable = shape is not None
        self._load_index()
        self._maps: dict[int, np.memmap] = {}

    # -- index -----------------------------------------------------------------------------------
    def _load_index(self) -> None:
        """Read index.jsonl and check it against the shards; a store that does not match its own index is refused.

        Only what a killed writer leaves is repaired (by the writer): a torn *last* index line, and rows past the
        last indexed one. A bad line before the last, an entry without its fields, or a shard shorter than its
        index says is damage: nothing is cut (the rows indexed after it would be lost while a rollout folder's
        trajectories.jsonl still lists them), the error names the folder, the key and the fix.
        """
        path = self.root / "index.jsonl"
        fix = (
            f"the features of {self.root} cannot be trusted: restore the folder from a copy, or collect "
            "again into a new --out"
        )
        records = read_jsonl_records(path, "key", "feature index", repair=self.writable, fix=fix)
        ends: dict[int, int] = {}
        for n, e in enumerate(records, 1):
            key, fields = e.get("key"), [e.get(f) for f in ("shard", "offset", "length")]
            if (
                not isinstance(key, str)
                or not all(type(v) is int for v in fields)
                or min(fields) < 0
                or fields[2] < 1
                or key in self.index
            ):
                what = (
                    "a second line for the key"
                    if key in self.index
                    else "needs a string key, integer shard >= 0, offset >= 0 and length >= 1"
                )
                raise VidNavError(f"{path}: line {n} ({dumps_json(e)[:120]}): {what}; {fix}")
            shard, offset, length = fields
            self.index[key] = (shard, offset, length)
            ends[shard] = max(ends.get(shard, 0), offset + length)
        self._ends = ends
        for shard, end in sorted(ends.items()):
            shard_path = self.root / f"shard-{shard:05d}.f16"
            size = shard_path.stat().st_size if shard_path.exists() else None
            if size is None or size < end * self.row_bytes:
                short = [
                    k for k, (s, o, n) in self.index.items() if s == shard and (o + n) * self.row_bytes > (size or 0)
                ]
                have = "is missing" if size is None else f"holds {size} bytes ({size / self.row_bytes:g} rows)"
                raise VidNavError(
                    f"{shard_path} {have} but {path} indexes {end} rows of {self.row_bytes} bytes in it "
                    f"(keys {', '.join(short[:3])}{' ...' if len(short) > 3 else ''} lie past its end); "
                    f"{fix}"
                )
        if not self.writable:
            return  # a writer may be between a trajectory's rows and its index line: leave them
        # cut rows written after the last index line (an interrupted append)
        for shard_path in self.root.glob("shard-*.f16"):
            shard = int(shard_path.stem.split("-")[1])
            want = ends.get(shard, 0) * self.row_bytes
            if shard_path.stat().st_size > want:
                with open(shard_path, "r+b") as f:
                    f.truncate(want)

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def __len__(self) -> int:
        return len(self.index)

    def keys(self) -> list[str]:
        return list(self.index)

    @property
    def n_rows(self) -> int:
        return sum(v[2] for v in self.index.values())

    # -- write -----------------------------------------------------------------------------------
    def add(self, key: str, feats: np.ndarray) -> None:
        """Append the features of one trajectory ([T, N, C]); a key already stored is an error."""
        if not self.writable:
            raise VidNavError(f"feature store {self.root} was opened to read; open it with shape= to write")
        if key in self.index:
            raise VidNavError(f"feature store {self.root} already holds {key!r}")
        feats = np.ascontiguousarray(feats, dtype=np.float16)
        if feats.ndim != 3 or feats.shape[1:] != self.shape:
            raise VidNavError(
                f"features for {key!r} have shape {feats.shape}, expected [T, {self.shape[0]}, {self.shape[1]}]"
            )
        if not np.isfinite(feats).all():  # also values past fp16's range (65504), which the cast made inf
            raise VidNavError(
                f"features for {key!r} hold inf or NaN (in fp16); nothing stored in {self.root}: the "
                "vision tower's output is broken (or too large for fp16)"
            )
        shard = max(self._ends, default=0)
        if self._ends.get(shard, 0) * self.row_bytes >= SHARD_BYTES:
            shard += 1
        offset = self._ends.get(shard, 0)
        path = self.root / f"shard-{shard:05d}.f16"
        with open(path, "ab") as f:
            f.write(feats.tobytes())
            f.flush()
            os.fsync(f.fileno())
        with open(self.root / "index.jsonl", "ab") as f:
            f.write(json.dumps({"key": key, "shard": shard, "offset": offset, "length": len(feats)}).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.index[key] = (shard, offset, len(feats))
        self._ends[shard] = offset + len(feats)
        self._maps.pop(shard, None)  # the file grew: remap on next read

    def check_finite(self, chunk_bytes: int = 1 << 24) -> None:
        """Refuse a store whose indexed features hold inf or NaN (a damaged or hand-made shard): read as features,
        they fail training at its first batch, or turn scores into NaN, naming neither folder nor key. Reads every
        indexed row once, in chunks, by the fp16 bit pattern (about 8 GB/s from the page cache)."""
        per_row = self.row_bytes // 2
        step = per_row * max(1, chunk_bytes // self.row_bytes)
        for shard, end in sorted(self._ends.items()):
            path = self.root / f"shard-{shard:05d}.f16"
            if end == 0:
                continue
            bits = np.memmap(path, dtype=np.uint16, mode="r", shape=(end * per_row,))
            for start in range(0, len(bits), step):
                block = bits[start : start + step] & 0x7FFF  # inf and NaN: all exponent bits set
                if int(block.max()) < 0x7C00:
                    continue
                for row in np.unique(np.nonzero(block >= 0x7C00)[0] // per_row) + start // per_row:
                    hit = next(
                        ((k, int(row) - o) for k, (s, o, n) in self.index.items() if s == shard and o <= row < o + n),
                        None,
                    )
                    if hit is not None:  # rows no key indexes are never read
                        raise VidNavError(
                            f"{self.root}: key {hit[0]!r} frame {hit[1]} (row {int(row)} of {path.name}) "
                            f"holds inf or NaN; the features of {self.root} cannot be trusted: restore "
                            "the folder from a copy, or collect again into a new --out"
                        )

    # -- read ------------------------------------------------------------------------------------
    def get(self, key: str, stop: int | None = None) -> np.ndarray:
        """Features of ``key`` (rows [0, stop)), a read-only memory-mapped fp16 array [T, N, C]."""
        try:
            shard, offset, length = self.index[key]
        except KeyError:
            raise VidNavError(f"feature store {self.root} has no features for {key!r}; collect them first") from None
        mm = self._maps.get(shard)
        if mm is None:
            path = self.root / f"shard-{shard:05d}.f16"
            # only the indexed rows: bytes a writer is appending past them may not make a whole row yet
            mm = np.memmap(path, dtype=np.float16, mode="r", shape=(self._ends[shard], *self.shape))
            self._maps[shard] = mm
        n = length if stop is None else min(stop, length)
        return mm[offset : offset + n]

    def __getstate__(self):  # memmaps are reopened in worker processes
        d = dict(self.__dict__)
        d["_maps"] = {}
        return d
