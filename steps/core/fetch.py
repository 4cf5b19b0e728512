"""Downloads for full-scale `fetch` steps: resumable, checksummed, atomic.

    from steps.core.fetch import download, unzip, hf_snapshot
    digest = download("http://host/file.zip", "data/cache/file.zip", sha256=None, size=None)

`download` writes into `<dest>.part` and resumes it with an HTTP Range request when a previous
transfer was cut (a server that ignores Range is answered by starting over); it verifies the
size and SHA-256 when they are given, and renames the finished file onto `dest` in one step, so
`dest` exists only when complete. A checksum mismatch raises ArtifactError naming the file and
what to do. Where the params hold no checksum, the caller records the digest `download` returns
(the fetch step writes it to a lock file) — a checksum is never invented.

Only full scale downloads; tests drive these functions against a local http.server or file://.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path

from steps.core.errors import ArtifactError
from steps.core.progress import Progress, log

CHUNK = 1 << 20  # bytes read per call


def sha256_file(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5_file(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """The MD5 hex digest of a file: the checksum some dataset pages publish (CIFAR) and DVC's
    content address; an integrity check, not security."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _mismatch(what: str, name: str, url: str, expected, got) -> ArtifactError:
    return ArtifactError(
        f"{name} from {url}: {what} mismatch (expected {expected}, got {got}); the partial "
        f"file was deleted. Rerun the fetch step to download it again; if it fails the same way the "
        f"file changed upstream: check the source and update the checksum in params/ "
        f"(params/<paper>/full.yaml), never disable the check"
    )


def _check(path: Path, url: str, sha256: str | None, size: int | None, name: str) -> str:
    """Verify a complete file (`name` in messages); returns its digest. Deletes it on a mismatch."""
    if size is not None and path.stat().st_size != int(size):
        got = path.stat().st_size
        path.unlink(missing_ok=True)
        raise _mismatch("size", name, url, size, got)
    digest = sha256_file(path)
    if sha256 is not None and digest.lower() != str(sha256).lower():
        path.unlink(missing_ok=True)
        raise _mismatch("sha256", name, url, sha256, digest)
    return digest


def _open(url: str, start: int, timeout: float):
    """Open `url` asking for bytes from `start` on; returns (response, resumed?)."""
    req = urllib.request.Request(url, headers={"User-Agent": "paperzoo-fetch"})
    if start > 0:
        req.add_header("Range", f"bytes={start}-")
    resp = urllib.request.urlopen(req, timeout=timeout)
    status = getattr(resp, "status", None) or resp.getcode()
    # 206 with a Content-Range that starts where we asked: append. Anything else (200, or a
    # file:// URL, which ignores Range): the whole file is coming, so start over.
    resumed = start > 0 and status == 206 and (resp.headers.get("Content-Range") or "").startswith(f"bytes {start}-")
    return resp, resumed


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    progress_every_s: float = 30.0,
) -> str:
    """Fetch `url` to `dest` (resuming `<dest>.part`), verify it, rename it into place.

    Returns the file's SHA-256. An existing `dest` is verified and kept (no network).
    Network errors are retried `retries` times, each try resuming where the last one stopped.
    """
    dest = Path(dest)
    if dest.exists():
        return _check(dest, url, sha256, size, dest.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout, progress_every_s)
            break
        except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError, OSError) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code == 416 and part.exists():
                break  # Range not satisfiable: the part is already complete; verify it below
            if isinstance(e, urllib.error.HTTPError) and e.code in (401, 403, 404):
                raise ArtifactError(f"cannot fetch {url} (HTTP {e.code}); check the URL and credentials in params/") from None
            if attempt == retries:
                raise ArtifactError(
                    f"cannot fetch {url} after {retries + 1} tries ({e.__class__.__name__}: {e}); "
                    f"rerun the fetch step: it resumes from {part}"
                ) from None
            wait = min(60.0, 2.0**attempt)
            log.info(f"{url}: {e.__class__.__name__} ({e}); retrying in {wait:.0f}s from byte {_size(part)}")
            time.sleep(wait)
    digest = _check(part, url, sha256, size, dest.name)
    os.replace(part, dest)
    log.info(f"fetched {dest} ({dest.stat().st_size} bytes, sha256 {digest})")
    return digest


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _transfer(url: str, part: Path, timeout: float, every_s: float) -> None:
    start = _size(part)
    resp, resumed = _open(url, start, timeout)
    with resp:
        if not resumed:
            start = 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else 0
        bar = Progress(total, part.name.removesuffix(".part"), every_s, initial=start)
        with open(part, "ab" if resumed else "wb") as f:
            while block := resp.read(CHUNK):
                f.write(block)
                bar.update(len(block))
        bar.close()
    if total and _size(part) < total:
        raise ConnectionError(f"transfer ended at byte {_size(part)} of {total}")


def unzip(archive: str | os.PathLike, dest: str | os.PathLike, members: Sequence[str] | None = None) -> list[str]:
    """Extract `archive` (all of it, or the named members / glob patterns) under `dest`.

    Members land in a temporary folder beside `dest` first and are moved in when all are out,
    so an interrupted extraction leaves no partial files in `dest`. Paths that would escape
    `dest` (absolute, or with ..) are refused. Returns the extracted names.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.unzip.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            if members is not None:
                names = [n for n in names if any(fnmatch.fnmatch(n, m) for m in members)]
                if not names:
                    raise ArtifactError(f"{archive} has no member matching {list(members)}")
            for n in names:
                if Path(n).is_absolute() or ".." in Path(n).parts:
                    raise ArtifactError(f"{archive} holds an unsafe path {n!r}; refusing to extract it")
                zf.extract(n, tmp)
        for n in names:
            target = dest / n
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / n, target)
    except zipfile.BadZipFile:
        raise ArtifactError(f"{archive} is not a valid zip file; delete it and rerun the fetch step") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return names


def hash_tree(root: str | os.PathLike) -> dict[str, dict]:
    """{relative path: {sha256, size}} for every file under `root` (hidden ones skipped)."""
    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    return out


def hf_snapshot(
    repo_id: str,
    dest: str | os.PathLike,
    revision: str | None = None,
    repo_type: str = "model",
    allow_patterns: Sequence[str] | None = None,
    max_files: int | None = None,
) -> str:
    """Download `repo_id` at `revision` from the Hugging Face Hub into `dest`; returns the commit.

    The revision (a branch, tag or commit) is resolved to its commit first and that commit is
    what is downloaded, so every file comes from one snapshot; record the returned commit to
    pin the next run. `max_files` keeps the first N matching files in sorted order (for very
    large datasets of many parquet parts). Credentials: the usual HF_TOKEN or `hf auth login`.
    Transfers resume (huggingface_hub keeps partial files under `dest`/.cache).
    """
    from huggingface_hub import HfApi, snapshot_download

    api = HfApi()
    commit = api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha
    patterns = list(allow_patterns) if allow_patterns else None
    if max_files is not None:
        files = sorted(api.list_repo_files(repo_id, repo_type=repo_type, revision=commit))
        files = [f for f in files if patterns is None or any(fnmatch.fnmatch(f, p) for p in patterns)]
        if not files:
            raise ArtifactError(f"{repo_id}@{commit} has no file matching {patterns}; check params")
        patterns = files[: int(max_files)]
    snapshot_download(repo_id, repo_type=repo_type, revision=commit, local_dir=str(dest), allow_patterns=patterns)
    log.info(f"fetched {repo_id}@{commit} into {dest}")
    return commit
