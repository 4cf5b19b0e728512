"""DVC over the Snakemake DAG (dvc.yaml, steps.core.dvc_sync): the generated dvc.yaml matches
the DAG; and, end to end at smoke scale in a fresh copy with a DVC remote in a temporary
directory: repro -> push -> clone -> pull -> sync, after which neither `dvc repro` nor Snakemake
runs anything; a parameter change reruns only its rules and shows in `dvc metrics diff`;
experiments in the workspace and in a temporary directory agree and leave a clean workspace;
corrupt files in the workspace or the cache are detected and replaced, never used."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from steps.core import dvc_sync
from steps.core.errors import ConfigError
from tests.conftest import PY, ROOT, copy_repo, patient, snakemake

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
SMOKE_TARGETS = ("results/instaflow/report.md", "results/index.md")
DATA_RULES = {"instaflow_digits", "instaflow_captions", "instaflow_fid_features", "instaflow_teacher", "instaflow_reflow"}


def env(work: Path) -> dict:
    # `python` in dvc.yaml's commands is this interpreter, as in an activated virtual environment.
    path = os.pathsep.join([str(Path(PY).parent), os.environ.get("PATH", "")])
    return {**os.environ, **GIT_ENV, "PATH": path, "PAPERZOO_ROOT": str(work), "DVC_NO_ANALYTICS": "1"}


def sh(work: Path, *cmd: str, timeout: int = 240, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(["timeout", "-s", "INT", "-k", "10", str(round(patient(timeout))), *cmd], cwd=work,
                         capture_output=True, text=True, env=env(work))
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def dvc(work: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return sh(work, PY, "-m", "dvc", *args, **kw)


def sync(work: Path, *args: str) -> subprocess.CompletedProcess:
    return sh(work, PY, "-m", "steps.core.dvc_sync", "sync", *args)


def ran_rules(res: subprocess.CompletedProcess) -> set[str]:
    """The Snakemake rules a `dvc repro`/`dvc exp run` executed."""
    return {line.split()[1].rstrip(":") for line in (res.stdout + res.stderr).splitlines()
            if line.startswith(("localrule ", "rule ")) and line.split()[1].rstrip(":") != "all"}


def nothing_to_do(work: Path) -> bool:
    res = snakemake(work, "-n", "-c1", *SMOKE_TARGETS, "--config", "scale=smoke")
    return "Nothing to be done" in res.stdout + res.stderr


def lock_md5(work: Path, out: str) -> str:
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    return next(o["md5"] for st in lock["stages"].values() for o in st.get("outs", []) if o["path"] == out)


def dir_entry_md5(work: Path, out: str, relpath: str) -> str:
    d = lock_md5(work, out)
    listing = json.loads((work / ".dvc" / "cache" / "files" / "md5" / d[:2] / d[2:]).read_text())
    return next(e["md5"] for e in listing if e["relpath"] == relpath)


def file_md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def clone(origin: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True, env=env(origin))
    return dest


# ---------------------------------------------------------------- dvc.yaml and the DAG


def test_dvc_yaml_is_generated_from_the_dag_at_mini():
    """dvc.yaml is no second copy of the DAG: it is what the generator makes of the registry and
    the Snakemake DAG (regenerate with `python -m steps.core.dvc_sync generate`)."""
    assert dvc_sync.dvc_yaml_scale(ROOT) == "mini"  # what `snakemake -c all` makes: the two agree
    res = subprocess.run([PY, "-m", "steps.core.dvc_sync", "generate", "--check"], cwd=ROOT,
                         capture_output=True, text=True, env=env(ROOT), timeout=patient(120))
    assert res.returncode == 0, f"dvc.yaml drifted from the DAG: {res.stderr[-2000:]}"
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert set(doc["stages"]) == {*dvc_sync.papers(ROOT), "index"}


def test_parse_summary():
    text = "Building DAG\noutput_file\tdate\trule\tlog-file(s)\tstatus\tplan\n" \
           "results/p/a.json\t-\tr\t\tmissing\tupdate pending\ndata/p/x.npz\t-\tq\t\tok\tno update\n\n"
    assert dvc_sync.parse_summary(text) == ["results/p/a.json", "data/p/x.npz"]


def test_paper_stage_versions_a_paper_per_directory():
    outs = ["data/p/x.npz", "models/p/m_s0.pt", "results/p/fid.json", "results/p/report.md", "results/p/report.json",
            "results/p/summary.json", "results/p/curves/teacher_s0.csv"]
    st = dvc_sync.paper_stage("p", "smoke", outs, ["workflow/rules/p.smk"], figures=True)
    assert st["outs"] == ["data/p", "models/p", "results/p"]
    assert st["metrics"] == ["results/p/summary.json"]  # the compact one: the others stay plain outputs
    assert st["plots"] == ["results/p/figures", "results/p/curves/teacher_s0.csv"]
    assert "params/p/smoke.yaml" in st["params"] and "params/p/base.yaml" in st["params"]
    assert {"steps/p", "workflow/rules/p.smk", "params/p/claims.yaml", "steps/core", "params/scale/smoke.yaml"} <= set(st["deps"])
    assert not [d for d in st["deps"] if "/q" in d]
    with pytest.raises(ConfigError, match="results/index.md"):
        dvc_sync.paper_stage("p", "smoke", [*outs, "results/index.md"], [], figures=False)
    assert dvc_sync.paper_stage("p", "full", ["results/p/a.json"], [], figures=False)["outs"] == ["results/p"]


def test_a_rules_file_belongs_to_the_longest_slug_that_fits():
    names = ["insta", "instaflow", "instaflow_v2"]
    assert dvc_sync.rule_owner("instaflow", names) == "instaflow"
    assert dvc_sync.rule_owner("instaflow_full", names) == "instaflow"
    assert dvc_sync.rule_owner("instaflow_v2_full", names) == "instaflow_v2"
    assert dvc_sync.rule_owner("insta_x", names) == "insta"
    assert dvc_sync.rule_owner("common", names) is None


def test_render_is_valid_dvc_yaml():
    st = dvc_sync.paper_stage("p", "mini", ["data/p/x", "results/p/a.json", "results/p/summary.json"], [], figures=False)
    doc = yaml.safe_load(dvc_sync.render("mini", {"p": st, "index": dvc_sync.index_stage(["p"])}))
    assert doc["vars"] == [{"scale": "mini"}]
    assert doc["stages"]["p"]["params"] == [{"params/p/base.yaml": None}, {"params/p/mini.yaml": None}]
    assert doc["stages"]["p"]["outs"] == [{"data/p": {"persist": True}}, {"results/p": {"persist": True}}]
    assert doc["stages"]["index"]["outs"] == ["results/index.md"]
    assert doc["metrics"] == ["results/p/summary.json"] and "plots" not in doc


def test_the_dvc_metric_is_the_headline_and_the_verdict_counts(tmp_path):
    """results/<paper>/summary.json (steps.core.report.dvc_metric): one short row per paper."""
    from omegaconf import OmegaConf

    from steps.core import report

    record = {"paper": "instaflow", "scale": "mini", "metric": "fid", "description": "d", "seeds": [0, 1],
              "values": {"one_step": {"instaflow_long": {"mean": 12.5, "std": 0.5, "per_seed": [12.0, 13.0]}}},
              "config_hash": "0" * 16, "git_revision": "x", "wall_time_s": 1.0, "device": "cpu"}
    (tmp_path / "fid.json").write_text(json.dumps(record))
    cfg = OmegaConf.create({"paper": "instaflow", "scale": "mini"})  # headline: fid.one_step.instaflow_long
    summary = {"claims": {"stated": 4, "holds": 2, "fails": 1, "not_testable_here": 1}, "verdicts": [{"id": "c"}]}
    assert report.dvc_metric(cfg, tmp_path, summary) == {
        "scale": "mini", "headline": 12.5, "headline_std": 0.5,
        "claims": {"stated": 4, "holds": 2, "fails": 1, "not_run": 0, "not_testable": 1}}
    (tmp_path / "fid.json").unlink()  # not run yet: no headline
    assert report.dvc_metric(cfg, tmp_path, summary)["headline"] is None


# ---------------------------------------------------------------- provenance


def _record(root: Path, out: str, **rec) -> None:
    path = dvc_sync.metadata_path(root, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))


def test_untrusted_outputs_are_those_snakemake_did_not_write(tmp_path):
    for name in ("ok", "edited", "norecord", "incomplete"):
        (tmp_path / "m").mkdir(exist_ok=True)
        (tmp_path / "m" / name).write_text(name)
    for name in ("ok", "edited"):
        _record(tmp_path, f"m/{name}", endtime=(tmp_path / "m" / name).stat().st_mtime, incomplete=False)
    _record(tmp_path, "m/incomplete", endtime=(tmp_path / "m" / "incomplete").stat().st_mtime, incomplete=True)
    os.utime(tmp_path / "m" / "edited", (time.time() + 5, time.time() + 5))  # rewritten after Snakemake
    d = tmp_path / "m" / "dir"
    d.mkdir()
    (d / ".snakemake_timestamp").write_text("")
    _record(tmp_path, "m/dir", endtime=(d / ".snakemake_timestamp").stat().st_mtime)
    outs = ["m/ok", "m/edited", "m/norecord", "m/incomplete", "m/dir", "m/missing"]
    assert dvc_sync.untrusted(tmp_path, outs) == ["m/edited", "m/norecord", "m/incomplete"]


def test_metadata_path_splits_long_names_as_snakemake_does(tmp_path):
    p = dvc_sync.metadata_path(tmp_path, "x" * 400)
    assert all(len(part) <= 255 for part in p.relative_to(tmp_path / ".snakemake" / "metadata").parts)
    assert p.parent.name.startswith("@") and not p.name.startswith("@")


def test_strays_are_files_outside_the_dag(tmp_path):
    for f in ("models/p/a.pt", "models/p/a.pt.resume.pt", "models/p/old_s2.pt", "data/p/sd/unet.bin",
              "results/p/figures/x.png", "results/p/clip.json"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    keep = ["models/p/a.pt", "data/p/sd", "results/p/figures"]
    assert dvc_sync.strays(tmp_path, ["data/p", "models/p", "results/p", "absent/p"], keep) == [
        "models/p/a.pt.resume.pt", "models/p/old_s2.pt", "results/p/clip.json"]


def test_clean_stages_and_touch_commands():
    status = {"b": [{"changed outs": {"models/b": "not in cache"}}], "dvc.yaml:index": []}
    assert dvc_sync.clean_stages(status, ["a", "b"]) == ["a"]
    assert dvc_sync.clean_stages(status, ["index"]) == []
    (one,) = dvc_sync.touch_commands("smoke", ["a"], all_clean=True, index_clean=True)
    assert one[3:6] == ["results/a/report.md", "results/a/report.json", "results/index.md"] and "--forceall" in one
    cmds = dvc_sync.touch_commands("smoke", ["a"], all_clean=False, index_clean=True)
    assert len(cmds) == 2 and "results/index.md" not in cmds[0] and "--allowed-rules" in cmds[1]
    assert dvc_sync.touch_commands("smoke", [], all_clean=False, index_clean=False) == []
    assert all(c[-2:] == ["--config", "scale=smoke"] for c in cmds)


def test_exp_override_names_the_file_that_sets_the_key():
    assert dvc_sync.param_file_override(ROOT, "instaflow", "smoke", "teacher.steps=50") == "params/instaflow/smoke.yaml:teacher.steps=50"
    assert dvc_sync.param_file_override(ROOT, "instaflow", "smoke", "distill.lr=0.001") == "params/instaflow/base.yaml:distill.lr=0.001"
    assert dvc_sync.param_file_override(ROOT, "instaflow", "mini", "teacher.steps=50") == "params/instaflow/base.yaml:teacher.steps=50"
    assert dvc_sync.param_file_override(ROOT, "instaflow", "smoke", "ckpt.every_steps=10") == "params/instaflow/smoke.yaml:+ckpt.every_steps=10"
    with pytest.raises(ConfigError, match="unknown key 'distill.lrr'"):
        dvc_sync.param_file_override(ROOT, "instaflow", "smoke", "distill.lrr=1")
    with pytest.raises(ConfigError, match="expects int"):
        dvc_sync.param_file_override(ROOT, "instaflow", "smoke", "teacher.steps=abc")


# ---------------------------------------------------------------- end to end, smoke scale


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A copy of the repository at smoke scale, reproduced with `dvc repro`, committed and
    pushed to a DVC remote in a temporary directory."""
    base = tmp_path_factory.mktemp("dvc")
    work = copy_repo(base / "origin")
    # InstaFlow alone: the DVC machinery is the same for every paper, and `dvc repro` runs the
    # papers one after another (each paper's own smoke DAG is tested on its own).
    (work / "workflow" / "papers.yaml").write_text("papers:\n  - instaflow\n")
    sh(work, PY, "-m", "steps.core.dvc_sync", "generate", "--scale", "smoke")
    dvc(work, "remote", "add", "-d", "shared", str(base / "remote"))
    sh(work, "git", "add", "-A")
    sh(work, "git", "commit", "-qm", "dvc at smoke")
    res = dvc(work, "repro", timeout=240)
    assert {"instaflow_teacher", "instaflow_evaluate", "report", "index"} <= ran_rules(res)
    sh(work, "git", "add", "-A")
    sh(work, "git", "commit", "-qm", "repro")
    dvc(work, "push")
    return work


@pytest.fixture(scope="module")
def outputs(origin) -> list[str]:
    """The outputs of InstaFlow's smoke DAG."""
    return dvc_sync.dag_outputs(origin, "instaflow", "smoke")


def one_step_fid(work: Path) -> dict:
    return json.loads((work / "results" / "instaflow" / "fid.json").read_text())["values"]["one_step"]


@pytest.mark.timeout(patient(300))
def test_repro_then_repro_and_snakemake_run_nothing(origin, outputs):
    t0 = time.monotonic()
    res = dvc(origin, "repro")
    noop_s = time.monotonic() - t0
    assert "Data and pipelines are up to date" in res.stdout and not ran_rules(res), res.stdout
    assert noop_s < 15, f"no-op dvc repro took {noop_s:.1f} s"
    assert nothing_to_do(origin)
    assert not dvc_sync.untrusted(origin, outputs)
    # bytecode next to the code the stages depend on does not change their hashes (.dvcignore)
    (origin / "steps" / "core" / "__pycache__").mkdir(exist_ok=True)
    (origin / "steps" / "core" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert "up to date" in dvc(origin, "status").stdout
    files = json.loads(dvc(origin, "metrics", "show", "--json").stdout)[""]["data"]  # the workspace
    assert set(files) == {"results/instaflow/summary.json"}  # the one compact metric of the paper
    summary = files["results/instaflow/summary.json"]["data"]
    assert summary["scale"] == "smoke" and summary["headline"] == one_step_fid(origin)["instaflow_long"]["mean"]
    files = json.loads(dvc(origin, "metrics", "show", "--json", "results/instaflow/fid.json").stdout)[""]["data"]
    assert files["results/instaflow/fid.json"]["data"]["scale"] == "smoke"  # a plain output, read when named
    plots = dvc(origin, "plots", "show", "--json", "-o", str(origin.parent / "plots")).stdout
    assert "fid_vs_steps.png" in plots


@pytest.mark.timeout(patient(480))
def test_clone_pull_sync_then_a_param_change_and_experiments(origin, outputs, tmp_path):
    # a fresh clone: after pull and sync, Snakemake trusts what DVC checked out; nothing reruns
    work = clone(origin, tmp_path / "clone")
    dvc(work, "pull")
    assert dvc_sync.untrusted(work, outputs) == outputs  # written by DVC: Snakemake cannot vouch
    sync(work)
    assert not dvc_sync.untrusted(work, outputs)
    assert nothing_to_do(work)
    res = dvc(work, "repro")
    assert not ran_rules(res) and "Running stage" not in res.stdout, res.stdout
    assert "up to date" in dvc(work, "status").stdout
    # a parameter change as an experiment in the workspace: only what reads `distill` reruns
    arg = sh(work, PY, "-m", "steps.core.dvc_sync", "set", "instaflow", "distill.lr=0.001").stdout.strip()
    assert arg == "params/instaflow/base.yaml:distill.lr=0.001"
    res = dvc(work, "exp", "run", "-n", "ws", "-S", arg, timeout=300)
    assert ran_rules(res) == {"instaflow_distill", "instaflow_evaluate", "report", "index"}, res.stdout[-3000:]
    diff = json.loads(dvc(work, "metrics", "diff", "--json").stdout)["results/instaflow/summary.json"]
    assert diff["headline"]["diff"] != 0 and "claims.stated" not in diff  # only what changed
    diff = json.loads(dvc(work, "metrics", "diff", "--json", "--targets", "results/instaflow/fid.json").stdout)
    diff = diff["results/instaflow/fid.json"]
    assert diff["values.one_step.instaflow_long.mean"]["diff"] != 0
    assert "values.one_step.rf2.mean" not in diff  # the teacher and reflow were not retrained
    lr = json.loads(dvc(work, "params", "diff", "--json").stdout)["params/instaflow/base.yaml"]["distill.lr"]
    assert (lr["old"], lr["new"]) == (0.0003, 0.001)
    # back to the commit: a clean workspace that Snakemake trusts again
    sh(work, "git", "checkout", "--", "params", "dvc.lock")
    dvc(work, "checkout")
    sync(work)
    assert sh(work, "git", "status", "--porcelain").stdout == ""
    assert "up to date" in dvc(work, "status").stdout and nothing_to_do(work)
    # the same experiment in a temporary directory (no Snakemake records there): the paper reruns
    # from scratch, the workspace is untouched, and the result equals the incremental one
    res = dvc(work, "exp", "run", "--temp", "-n", "tmp", "-S", arg, timeout=300)
    assert ran_rules(res) >= DATA_RULES, res.stdout[-3000:]
    assert sh(work, "git", "status", "--porcelain").stdout == ""
    assert "up to date" in dvc(work, "status").stdout and nothing_to_do(work)
    got = {}
    for rev in json.loads(dvc(work, "exp", "show", "--json").stdout):
        for e in rev.get("experiments") or []:
            run = e["revs"][0]
            got[run["name"]] = run["data"]["metrics"]["results/instaflow/summary.json"]["data"]["headline"]
    assert set(got) == {"ws", "tmp"} and got["ws"] == got["tmp"] != one_step_fid(work)["instaflow_long"]["mean"]


@pytest.mark.timeout(patient(420))
def test_corrupt_files_are_detected_and_replaced_never_used(origin, tmp_path):
    work = clone(origin, tmp_path / "clone")
    sync(work, "--pull")
    fid = one_step_fid(work)
    ckpt = work / "models" / "instaflow" / "distill_rf2_s0.pt"
    good = file_md5(ckpt)
    # a corrupt checkpoint in the workspace: DVC reports it, and checkout puts back the cached one
    with open(ckpt, "ab") as f:
        f.write(b"garbage")
    bad = file_md5(ckpt)
    status = json.loads(dvc(work, "status", "--json").stdout)
    assert status["instaflow"] == [{"changed outs": {"models/instaflow": "modified"}}]
    dvc(work, "checkout", "--force")
    assert file_md5(ckpt) == good and "up to date" in dvc(work, "status").stdout
    # nor does `dvc repro` version a corrupt checkpoint it finds among the persisted outputs:
    # Snakemake did not write it, so it is made again, with what depends on it
    with open(ckpt, "ab") as f:
        f.write(b"garbage")
    res = dvc(work, "repro", timeout=300)
    assert {"instaflow_distill", "instaflow_evaluate", "report"} == ran_rules(res) - {"index"}, res.stdout[-3000:]
    assert file_md5(ckpt) != bad and dir_entry_md5(work, "models/instaflow", "distill_rf2_s0.pt") == file_md5(ckpt)
    assert one_step_fid(work) == fid
    # a corrupt file in the cache (read-only, as DVC keeps it): DVC trusts its cache, so
    # `dvc checkout` copies it and `dvc push` would upload it; the hashes catch it, and sync
    # fetches a good copy again from the remote before Snakemake is told to trust the file
    rf1 = work / "models" / "instaflow" / "rf1_s0.pt"
    md5 = dir_entry_md5(work, "models/instaflow", "rf1_s0.pt")
    cached = work / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cached.chmod(0o644)
    with open(cached, "r+b") as f:
        f.seek(100)
        f.write(b"XXXX")
    cached.chmod(0o444)
    res = sh(work, PY, "-m", "steps.core.dvc_sync", "verify", "--cache", check=False)
    assert res.returncode == 1 and str(cached) in res.stderr  # before a push
    rf1.unlink()
    dvc(work, "checkout")
    res = sh(work, PY, "-m", "steps.core.dvc_sync", "verify", check=False)
    assert res.returncode == 1 and "workspace models/instaflow/rf1_s0.pt" in res.stderr
    res = sync(work)
    assert "models/instaflow/rf1_s0.pt is corrupt" in res.stderr
    assert file_md5(rf1) == md5 and file_md5(cached) == md5
    assert nothing_to_do(work)
    assert sh(work, PY, "-m", "steps.core.dvc_sync", "verify", "--cache").returncode == 0
