"""steps.core.fetch and the full-scale fetch phase, against a local HTTP server on 127.0.0.1
(Range support switchable, transfers that can be cut) and file:// URLs. Never the network."""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import threading
import types
import zipfile

import pytest

from steps.core import fetch
from steps.core.errors import ArtifactError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves /data (PAYLOAD). server.ranges toggles Range support; server.cut_first > 0 makes
    the first response stop after that many bytes; server.seen records Range headers."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server
        srv.seen.append(self.headers.get("Range"))
        if self.path != "/data":
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cut_first:
            body, srv.cut_first = body[: srv.cut_first], 0
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.ranges, srv.cut_first, srv.seen = True, 0, []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/data"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(fetch.time, "sleep", lambda s: None)


def test_download_verifies_and_renames(server, tmp_path):
    dest = tmp_path / "sub" / "file.bin"
    assert fetch.download(server.url, dest, sha256=SHA, size=len(PAYLOAD)) == SHA
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "sub" / "file.bin.part").exists()
    # an existing, verified file is kept without asking the server again
    n = len(server.seen)
    assert fetch.download(server.url, dest, sha256=SHA) == SHA and len(server.seen) == n


def test_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:300_000])
    assert fetch.download(server.url, dest, sha256=SHA) == SHA
    assert server.seen == ["bytes=300000-"] and dest.read_bytes() == PAYLOAD


def test_server_without_range_support_starts_over(server, tmp_path):
    server.ranges = False
    (tmp_path / "file.bin.part").write_bytes(b"stale bytes from another transfer")
    assert fetch.download(server.url, tmp_path / "file.bin", sha256=SHA) == SHA
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_a_cut_transfer_is_retried_from_where_it_stopped(server, tmp_path):
    server.cut_first = 200_000
    assert fetch.download(server.url, tmp_path / "file.bin", sha256=SHA, retries=2) == SHA
    assert server.seen[0] is None and server.seen[1].startswith("bytes=")  # second try resumed
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_names_the_file_and_deletes_the_partial(server, tmp_path):
    with pytest.raises(ArtifactError, match=r"file\.bin from .*sha256 mismatch.*update the checksum"):
        fetch.download(server.url, tmp_path / "file.bin", sha256="0" * 64)
    assert not (tmp_path / "file.bin").exists() and not (tmp_path / "file.bin.part").exists()
    with pytest.raises(ArtifactError, match="size mismatch"):
        fetch.download(server.url, tmp_path / "file.bin", size=5)


def test_missing_url_fails_with_one_line(server, tmp_path):
    with pytest.raises(ArtifactError, match=r"HTTP 404"):
        fetch.download(server.url.replace("/data", "/nothing"), tmp_path / "x")


def test_file_urls_work(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    assert fetch.download(src.as_uri(), tmp_path / "out" / "copy.bin", sha256=SHA) == SHA


def test_unzip_members_atomically_and_refuses_unsafe_paths(tmp_path):
    arc = tmp_path / "a.zip"
    with zipfile.ZipFile(arc, "w") as z:
        z.writestr("annotations/captions_val2017.json", "{}")
        z.writestr("annotations/instances_val2017.json", "{}")
    assert fetch.unzip(arc, tmp_path / "out", ["annotations/captions_*"]) == ["annotations/captions_val2017.json"]
    assert sorted(p.name for p in (tmp_path / "out" / "annotations").iterdir()) == ["captions_val2017.json"]
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(ArtifactError, match="unsafe path"):
        fetch.unzip(bad, tmp_path / "out2")
    assert not (tmp_path / "escape.txt").exists()


def test_hf_snapshot_pins_the_resolved_commit(monkeypatch, tmp_path):
    calls = {}

    class Api:
        def repo_info(self, repo_id, repo_type, revision):
            return types.SimpleNamespace(sha="c0ffee" * 6 + "beef")

        def list_repo_files(self, repo_id, repo_type, revision):
            return ["b.parquet", "README.md", "a.parquet", "c.parquet"]

    def snapshot_download(repo_id, **kw):
        calls.update(kw, repo_id=repo_id)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(HfApi=Api, snapshot_download=snapshot_download))
    commit = fetch.hf_snapshot("org/data", tmp_path, "main", "dataset", ["*.parquet"], max_files=2)
    assert commit == calls["revision"] == "c0ffee" * 6 + "beef"
    assert calls["allow_patterns"] == ["a.parquet", "b.parquet"] and calls["repo_type"] == "dataset"


def run_fetch(tmp_path, files, extra=()):
    from steps.core.cli import load
    from steps.instaflow.sd import fetch as phase

    files = "[" + ",".join("{" + ",".join(f"{k}:'{v}'" for k, v in f.items()) + "}" for f in files) + "]"
    cfg = load("instaflow", "fetch", ["scale=full", f"sd.assets.inception.files={files}", *extra,
                                      f"io.cache={tmp_path / 'cache'}", f"io.inception={tmp_path / 'inception'}"])
    return phase.main(cfg)


def test_fetch_phase_records_unknown_checksums_in_a_lock_file(tmp_path):
    src = tmp_path / "w-7be5be79.pth"
    src.write_bytes(PAYLOAD)
    run_fetch(tmp_path, [{"url": src.as_uri(), "name": "w.pth"}])
    lock = json.loads((tmp_path / "inception.lock.json").read_text())
    assert lock["source"]["urls"]["w.pth"] == {"url": src.as_uri(), "sha256": SHA, "size": len(PAYLOAD), "pinned": False}
    assert lock["files"] == {"w.pth": {"sha256": SHA, "size": len(PAYLOAD)}}
    assert (tmp_path / "inception" / "w.pth").read_bytes() == PAYLOAD


def test_fetch_phase_checks_pinned_hashes_and_prefixes(tmp_path):
    src = tmp_path / "w.pth"
    src.write_bytes(PAYLOAD)
    run_fetch(tmp_path, [{"url": src.as_uri(), "sha256": SHA}])
    assert json.loads((tmp_path / "inception.lock.json").read_text())["source"]["urls"]["w.pth"]["pinned"] is True
    with pytest.raises(ArtifactError, match="does not start with 12345678"):
        run_fetch(tmp_path / "b", [{"url": src.as_uri(), "sha256_prefix": "12345678"}])
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        run_fetch(tmp_path / "c", [{"url": src.as_uri(), "sha256": "f" * 64}])
    assert not (tmp_path / "c" / "inception").exists()
