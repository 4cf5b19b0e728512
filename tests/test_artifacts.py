"""Artifacts at the seams between steps (steps.core.io, seal, provenance, checkpoint, report):

* a torch file carries a SHA-256 seal inside its zip archive: altered bytes are refused before
  torch unpickles anything, and torch.load (also with mmap=True) ignores the seal;
* every artifact records the scale it was built at; a step refuses one built at another scale
  and says how to rebuild it; artifacts without a record are accepted;
* a resume checkpoint is resumed only for the same semantic config and the same inputs;
* outputs get the umask's ordinary mode;
* the report states the run it reports: seeds, overrides and the jobs behind its metrics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from steps.core import checkpoint, io, metrics, provenance, seal
from steps.core.config import compose, config_hash
from steps.core.errors import ArtifactError, remedy
from tests.conftest import ROOT, copy_repo, patient, snakemake


@pytest.fixture()
def step():
    """Open a step context like steps.core.cli.run does: step(scale, phase=..., overrides=...)."""

    def open_(scale: str, phase: str = "teacher", paper: str = "instaflow", overrides=(), seeds=None):
        return provenance.open_step(paper, scale, phase, "0" * 16, overrides, 0.0, seeds)

    yield open_
    provenance.close_step()


@pytest.fixture()
def said():
    """The lines steps.core logs (the `paperzoo` logger), as one string: said.text."""
    import logging

    class Lines(logging.Handler):
        text = ""

        def emit(self, record):
            self.text += record.getMessage() + "\n"

    h, logger = Lines(), logging.getLogger("paperzoo")
    old = logger.level
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
    yield h
    logger.removeHandler(h)
    logger.setLevel(old)


def flip_middle(path: Path, n: int = 64) -> None:
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + n] = bytes(b ^ 0xFF for b in raw[mid:mid + n])
    path.write_bytes(bytes(raw))


# ---------------------------------------------------------------------------- 1. the seal

def test_a_checkpoint_altered_in_its_middle_is_refused(tmp_path):
    """The issue: 64 bytes flipped in a checkpoint's middle left a valid zip that torch loaded
    silently (FID 1.1e6, exit 0). Its seal refuses it in one line that says how to rebuild it."""
    p = tmp_path / "rf1_s0.pt"
    checkpoint.save(p, {"x": 1}, 3, model=torch.nn.Linear(64, 64))
    flip_middle(p)
    with zipfile.ZipFile(p) as z:
        assert z.namelist()  # still a valid zip archive
    torch.load(p, weights_only=False)  # and torch alone does not notice
    with pytest.raises(ArtifactError) as e:
        checkpoint.load(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and "altered or corrupt" in msg
    assert f"snakemake -c all --force {p}" in msg


def test_a_seal_is_ignored_by_torch_load_with_and_without_mmap(tmp_path):
    p = tmp_path / "m.pt"
    net = torch.nn.Linear(8, 3)
    digest = io.save_torch(p, {"w": net.state_dict()})
    names = zipfile.ZipFile(p).namelist()
    assert names[-1].endswith("/paperzoo.json") and len(digest) == 64
    for kw in ({}, {"mmap": True}, {"weights_only": True}, {"weights_only": True, "mmap": True}):
        back = torch.load(p, map_location="cpu", **kw)["w"]
        assert torch.equal(back["weight"], net.weight), kw
    assert torch.equal(io.load_torch(p, mmap=True)["w"]["bias"], net.bias)
    assert seal.verify(p).digest == digest


# Offsets in the zip's central directory (PKWARE APPNOTE 4.3.12): a member's CRC-32 at 16, the
# length of its extra field at 30 (changing it leaves a directory zipfile cannot parse).
@pytest.mark.parametrize("where", ["directory crc", "directory layout", "seal", "appended member"])
def test_any_alteration_of_a_sealed_file_is_refused(tmp_path, where):
    p = tmp_path / "m.pt"
    io.save_torch(p, {"w": torch.arange(1000.0)})
    if where == "appended member":
        with zipfile.ZipFile(p, "a") as z:
            z.writestr("archive/extra", b"x")
    else:
        raw = bytearray(p.read_bytes())
        start = zipfile.ZipFile(p).start_dir
        at = {"directory crc": start + 16, "directory layout": start + 30}.get(where) or raw.index(b'"sha256"') + 12
        raw[at] ^= 0x01
        p.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="altered or corrupt"):
        io.load_torch(p)


def test_a_checkpoint_without_a_seal_loads_with_a_warning(tmp_path, said):
    p = tmp_path / "old.pt"  # as written before seals existed
    torch.save({"format": checkpoint.FORMAT, "state": {}, "step": 5, "config": None, "rng": {}}, p)
    assert checkpoint.load(p)["step"] == 5
    assert f"checkpoint {p} has no SHA-256 seal" in said.text
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ArtifactError, match="not a paperzoo checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")


def test_no_step_reads_or_writes_artifacts_around_steps_core():
    """Every torch file, npz and parquet a step writes or reads goes through steps.core
    (sealed, hashed, scale-checked): no torch.save/torch.load/np.load/read_parquet elsewhere."""
    offenders = [f.relative_to(ROOT).as_posix() for f in (ROOT / "steps").rglob("*.py")
                 if f.parent.name != "core" and re.search(r"torch\.(save|load)\(|np\.load\(|read_parquet\(", f.read_text())
                 and f.relative_to(ROOT).as_posix() not in USER_FILES]
    assert offenders == []


# Files that read weights released by others (verified by the fetch step's checksums) or write
# test fixtures that stand for them: not paperzoo artifacts, so they carry no seal.
USER_FILES = {"steps/nn/lpips.py", "steps/gpusq_vit/deit.py", "steps/nitrofusion/sdxl/models.py"}


# ---------------------------------------------------------------------------- 2. the scale

@pytest.mark.parametrize("kind", ["npz", "parquet", "torch", "json", "metrics"])
def test_an_artifact_built_at_another_scale_is_refused(tmp_path, step, kind):
    p = tmp_path / f"a.{kind}"
    step("smoke")
    if kind == "npz":
        io.save_npz(p, x=np.zeros(3))
    elif kind == "parquet":
        io.save_parquet(p, pd.DataFrame({"a": [1]}))
    elif kind == "torch":
        checkpoint.save(p, None, 0, model=torch.nn.Linear(2, 2))
    elif kind == "json":
        io.write_json(p, {"a": 1}, artifact=True)
    else:
        metrics.write(p, compose("instaflow", "smoke", phase="evaluate"), "m", "d", {"a": 1.0}, 0, "cpu")
    load = {"npz": io.load_npz, "parquet": io.load_parquet, "torch": checkpoint.load, "json": io.read_json,
            "metrics": lambda p, what: metrics.read(p)}[kind]
    step("smoke")
    load(p, "thing")  # the same scale: fine
    step("full")
    with pytest.raises(ArtifactError) as e:
        load(p, "thing")
    msg = str(e.value)
    assert "built at scale smoke, but this step runs at scale full" in msg
    assert f"snakemake -c all --force {p} --config scale=full" in msg
    provenance.close_step()
    load(p, "thing")  # outside a step (a test calling main(cfg)) nothing is checked


def test_artifacts_without_a_record_are_accepted(tmp_path, step):
    io.save_npz(tmp_path / "d.npz", x=np.ones(2))  # outside a step: no record
    torch.save({"w": 1}, tmp_path / "user.pt")
    step("full")
    assert io.load_npz(tmp_path / "d.npz")["x"].sum() == 2
    assert io.load_torch(tmp_path / "user.pt")["w"] == 1


def test_the_records_formats(tmp_path, step):
    """What other code may read: npz key __paperzoo__ (JSON text; not in the content hash),
    parquet metadata `paperzoo`, the seal member's record, metrics `jobs` and `overrides`."""
    step("smoke", overrides=["teacher.steps=7"], seeds=[0])
    digest = io.save_npz(tmp_path / "d.npz", x=np.ones(2))
    with np.load(tmp_path / "d.npz") as z:
        rec = json.loads(str(z["__paperzoo__"]))
    assert digest == io.content_hash({"x": np.ones(2)})  # the record leaves the data's hash alone
    assert {k: rec[k] for k in ("paper", "scale", "phase")} == {"paper": "instaflow", "scale": "smoke", "phase": "teacher"}
    job = rec["jobs"][-1]
    assert job["id"] == rec["job"] and job["outputs"] == [str(tmp_path / "d.npz")] and job["seeds"] == [0]
    assert job["overrides"] == ["teacher.steps=7"] and job["wall_s"] >= 0
    io.save_parquet(tmp_path / "t.parquet", pd.DataFrame({"a": [1]}))
    import pyarrow.parquet as pq

    assert json.loads(pq.read_schema(tmp_path / "t.parquet").metadata[b"paperzoo"])["scale"] == "smoke"
    io.save_torch(tmp_path / "m.pt", {"a": 1})
    assert seal.verify(tmp_path / "m.pt").record["job"] == rec["job"]


def test_a_step_carries_the_jobs_of_what_it_read(tmp_path, step):
    up = step("smoke", phase="digits")
    io.save_npz(tmp_path / "d.npz", x=np.ones(2))
    step("smoke", phase="teacher", seeds=[1])
    io.load_npz(tmp_path / "d.npz")
    checkpoint.save(tmp_path / "rf1_s1.pt", None, 0, model=torch.nn.Linear(2, 2))
    cfg = compose("instaflow", "smoke", ["seeds=[1]"], phase="evaluate")
    step("smoke", phase="evaluate", overrides=["seeds=[1]"], seeds=[1])
    checkpoint.load(tmp_path / "rf1_s1.pt")
    rec = metrics.write(tmp_path / "fid.json", cfg, "fid", "d", {"a": 1.0}, 0, "cpu")
    assert [j["phase"] for j in rec["jobs"]] == ["digits", "teacher", "evaluate"]
    assert rec["jobs"][0]["id"] == up.job and rec["overrides"] == ["seeds=[1]"]
    text = (tmp_path / "fid.json").read_text()
    assert len([line for line in text.splitlines() if '"phase"' in line]) == 3  # one line per job
    assert metrics.read(tmp_path / "fid.json") == rec


def test_remedy_names_the_scale_unless_it_is_mini(step):
    assert "--config" not in remedy("data/x.npz")
    step("mini")
    assert "--config" not in remedy("data/x.npz")
    step("smoke")
    assert "`snakemake -c all --force data/x.npz --config scale=smoke`" in remedy("data/x.npz")


def test_the_readmes_by_hand_command_refuses_smoke_data(tmp_path, step):
    """README: `python -m steps.instaflow.teacher scale=mini ... io.digits=data/instaflow/digits.npz`
    on data a smoke run built now stops with one line naming both scales."""
    step("smoke", phase="digits")
    rng = np.random.default_rng(0)
    io.save_npz(tmp_path / "digits.npz", images=rng.uniform(-1, 1, (64, 64)).astype(np.float32),
                labels=rng.integers(0, 10, 64), caption_id=rng.integers(0, 4, 64))
    io.save_npz(tmp_path / "emb.npz", embedding=np.eye(4, dtype=np.float32), caption_id=np.arange(4))
    provenance.close_step()
    res = subprocess.run([sys.executable, "-m", "steps.instaflow.teacher", "scale=mini", "seed=0", "teacher.steps=5",
                          f"io.digits={tmp_path}/digits.npz", f"io.captions={tmp_path}/emb.npz", f"io.out={tmp_path}/rf1.pt"],
                         cwd=ROOT, capture_output=True, text=True, timeout=patient(120))
    assert res.returncode == 3, res.stderr
    err = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "built at scale smoke, but this step runs at scale mini" in err[0], res.stderr
    assert not (tmp_path / "rf1.pt").exists()


# ---------------------------------------------------------------------------- 3. resume

def _loop(cfg, out, steps=10):
    return checkpoint.TrainLoop(cfg, out, steps, "t", model=torch.nn.Linear(2, 2))


def _interrupted(cfg, out, at=4):
    loop = _loop(cfg, out)
    loop.checkpoint(at)
    return out.with_name(out.name + ".resume.pt")


def test_resume_only_for_the_same_config(tmp_path, said):
    out = tmp_path / "rf1.pt"
    long = compose("instaflow", "smoke", ["teacher.steps=6000"], phase="teacher")
    default = compose("instaflow", "smoke", phase="teacher")
    resume = _interrupted(long, out)
    assert _loop(default, out).start == 0  # the default config does not resume the 6000-step run
    assert "another config" in said.text and f"hash {config_hash(long)}" in said.text
    assert not resume.exists() and resume.with_name(resume.name + ".stale").exists()
    resume = _interrupted(default, out)
    other_threads = compose("instaflow", "smoke", ["threads=3", "ckpt.every_steps=7"], phase="teacher")
    assert _loop(other_threads, out).start == 4  # operational keys change nothing


def test_resume_only_for_the_same_inputs(tmp_path, step, said):
    cfg = compose("instaflow", "smoke", phase="teacher")
    out = tmp_path / "rf1.pt"
    step("smoke", phase="digits")
    io.save_npz(tmp_path / "d.npz", x=np.zeros(3))
    step("smoke")
    io.load_npz(tmp_path / "d.npz")
    _interrupted(cfg, out)
    step("smoke")
    io.load_npz(tmp_path / "d.npz")
    assert _loop(cfg, out).start == 4  # same inputs: resumes
    _interrupted(cfg, out)
    step("smoke", phase="digits")
    io.save_npz(tmp_path / "d.npz", x=np.ones(3))  # upstream rebuilt with other data
    step("smoke")
    io.load_npz(tmp_path / "d.npz")
    assert _loop(cfg, out).start == 0
    assert "its input files have changed" in said.text


def test_a_rerun_with_another_config_starts_over_end_to_end(tmp_path):
    """The issue's case through the step's CLI: a run killed with teacher.steps=6000, then a run
    with the default config, which must not resume the stale state."""
    rng = np.random.default_rng(0)
    io.save_npz(tmp_path / "digits.npz", images=rng.uniform(-1, 1, (64, 64)).astype(np.float32),
                labels=rng.integers(0, 10, 64), caption_id=rng.integers(0, 4, 64))
    io.save_npz(tmp_path / "emb.npz", embedding=np.eye(4, dtype=np.float32), caption_id=np.arange(4))
    out, resume = tmp_path / "rf1.pt", tmp_path / "rf1.pt.resume.pt"
    base = [sys.executable, "-m", "steps.instaflow.teacher", "scale=smoke", "seed=0", "threads=1",
            f"io.digits={tmp_path}/digits.npz", f"io.captions={tmp_path}/emb.npz", f"io.out={out}"]
    p = subprocess.Popen([*base, "teacher.steps=6000", "ckpt.every_steps=20"], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 120
        while not resume.exists() and p.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
    finally:
        p.kill()
        p.wait()
    assert resume.exists() and not out.exists()
    res = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=patient(120))
    assert res.returncode == 0, res.stderr
    assert "not resuming" in res.stderr and "another config" in res.stderr and f"paperzoo resuming {out}" not in res.stderr
    assert checkpoint.load(out)["step"] == 100 and (tmp_path / "rf1.pt.resume.pt.stale").exists()


# ---------------------------------------------------------------------------- 4. modes

@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_get_the_umasks_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        io.write_text(tmp_path / "sub" / "a.txt", "x")
        io.save_npz(tmp_path / "d.npz", x=np.zeros(1))
        checkpoint.save(tmp_path / "c.pt", None, 0)
    finally:
        os.umask(old)
    for f in ("sub/a.txt", "d.npz", "c.pt"):
        assert (tmp_path / f).stat().st_mode & 0o777 == mode, f
    assert (tmp_path / "sub").stat().st_mode & 0o777 == 0o777 & ~umask


# ---------------------------------------------------------------------------- 5. the report

def test_the_report_states_the_run_it_reports(tmp_path):
    """A smoke run with seed 0, then one with seeds=[1]: the report states seeds [1], the
    override, and only the jobs behind the seed-1 metrics (not the seed-0 training jobs that
    still lie in benchmarks/)."""
    work = copy_repo(tmp_path / "w")
    snakemake(work, "-c2", "instaflow", "--config", "scale=smoke")
    snakemake(work, "-c2", "instaflow", "--config", "scale=smoke", "instaflow=seeds=[1]")
    res = work / "results" / "instaflow"
    fid = metrics.read(res / "fid.json")
    assert fid["seeds"] == [1] and fid["overrides"] == ["seeds=[1]"]
    phases = sorted(j["phase"] for j in fid["jobs"])
    assert phases == ["captions", "digits", "distill", "distill", "evaluate", "fid_features", "reflow", "teacher"]
    outputs = [o for j in fid["jobs"] for o in j["outputs"]]
    assert "models/instaflow/rf1_s1.pt" in outputs and not any("_s0" in o for o in outputs)
    report = (res / "report.md").read_text()
    run = next(line for line in report.splitlines() if line.startswith("Run:"))
    m = re.search(r"Run: seeds \[1\], overrides `seeds=\[1\]`, .* (\d+) jobs, (\d+) s of job wall time", run)
    assert m, run
    jobs = provenance.merge_jobs(j for f in sorted(res.glob("*.json")) if f.name not in ("report.json", "summary.json")
                                 for j in json.loads(f.read_text())["jobs"])
    assert int(m.group(1)) == len(jobs) == 8 and abs(int(m.group(2)) - sum(j["wall_s"] for j in jobs)) <= 1, run
    benchmarks = sorted(p.stem for p in (work / "benchmarks" / "instaflow").glob("*.tsv"))
    assert "teacher_s0" in benchmarks  # the earlier run's jobs are still there, and not counted
    assert "teacher → rf1_s1.pt" in report and "rf1_s0.pt" not in report
