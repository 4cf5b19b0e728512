"""A SHA-256 seal inside a zip archive: how a torch file (torch.save's zip format) carries its
own digest and provenance record, so both travel with the file (DVC pushes and pulls single
files; a sidecar could get separated from it).

`seal(path, record)` appends one stored member, `<root>/paperzoo.json`, after torch's records:

    {"format": "paperzoo-seal/1", "sha256": "<64 hex>", "covers": <bytes>, "record": {...} | null}

`sha256` covers the first `covers` bytes of the file (every member torch wrote, headers and data,
which is everything before the seal), the central-directory entries of those members (name,
offset, sizes, CRC: the index torch reads them through) and the record. torch.load reads its
records by name and ignores the extra member, with and without mmap=True (checked by
tests/test_artifacts.py), so a sealed file is still an ordinary torch file. torch does not check
the zip CRCs of what it loads: without the seal, bytes altered in the middle of a checkpoint load
silently.

`verify(path)` recomputes the digest (one sequential read of the file, no unpickling) and
returns the record; an archive without the member is reported as unsealed (a file written
before seals existed, or by another program).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass

FORMAT = "paperzoo-seal/1"
NAME = "paperzoo.json"
_CHUNK = 1 << 22


class SealError(Exception):
    """The archive carries a seal that does not match its content."""


@dataclass(frozen=True)
class Seal:
    sealed: bool  # False: a zip (or other file) without our member
    digest: str | None
    record: dict | None


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _entries(infos) -> bytes:
    return _canonical([[i.filename, i.header_offset, i.compress_size, i.file_size, i.CRC] for i in infos])


def _digest(f, covers: int, infos, record) -> str:
    h = hashlib.sha256()
    f.seek(0)
    left = covers
    buf = bytearray(min(_CHUNK, max(covers, 1)))
    view = memoryview(buf)
    while left > 0:
        n = f.readinto(view[: min(len(buf), left)])
        if not n:
            raise SealError(f"file ends before the {covers} bytes its seal covers")
        h.update(view[:n])
        left -= n
    h.update(_entries(infos))
    h.update(_canonical(record))
    return h.hexdigest()


def _tail_has_seal(f, tail: int = 1 << 22) -> bool:
    """Whether the last `tail` bytes hold a seal (they hold the seal and the zip directory)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - tail))
    return FORMAT.encode() in f.read()


def _member_name(infos) -> str:
    root = infos[0].filename.split("/", 1)[0] if infos and "/" in infos[0].filename else ""
    return f"{root}/{NAME}" if root else NAME


def seal(path: str | os.PathLike, record: dict | None = None) -> str:
    """Append the seal member to the zip archive at `path` (just written, not yet sealed);
    returns the digest."""
    with open(path, "rb") as f, zipfile.ZipFile(f) as z:
        infos = z.infolist()
        covers = z.start_dir
        digest = _digest(f, covers, infos, record)
    body = _canonical({"format": FORMAT, "sha256": digest, "covers": covers, "record": record})
    info = zipfile.ZipInfo(_member_name(infos), date_time=(1980, 1, 1, 0, 0, 0))  # fixed: same bytes for same content
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(info, body, compress_type=zipfile.ZIP_STORED)
    return digest


def verify(path: str | os.PathLike) -> Seal:
    """The file's seal, checked; SealError when it does not match. A file that is no zip
    archive or has no seal is `Seal(sealed=False)`: whoever loads it decides."""
    with open(path, "rb") as f:
        try:
            z = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError):
            if _tail_has_seal(f):  # a sealed archive whose index no longer parses
                raise SealError("its zip directory is unreadable") from None
            return Seal(False, None, None)
        with z:
            infos = z.infolist()
            mine = [i for i in infos if i.filename.rsplit("/", 1)[-1] == NAME and i is infos[-1]]
            if not mine:
                if any(i.filename.rsplit("/", 1)[-1] == NAME for i in infos):
                    raise SealError("its seal is not its last member (members were added after it)")
                return Seal(False, None, None)
            try:
                body = json.loads(z.read(mine[0]))
            except (zipfile.BadZipFile, ValueError, KeyError, OSError) as e:
                raise SealError(f"its seal is unreadable ({e.__class__.__name__})") from None
            if not isinstance(body, dict) or body.get("format") != FORMAT:
                raise SealError("its seal has an unknown format")
            covers = body.get("covers")
            others = infos[:-1]
            if covers != mine[0].header_offset or any(i.header_offset >= covers for i in others):
                raise SealError("its members do not lie where its seal says")
            if _digest(f, covers, others, body.get("record")) != body.get("sha256"):
                raise SealError("it fails its SHA-256 digest (altered or corrupt)")
            return Seal(True, body["sha256"], body.get("record"))
