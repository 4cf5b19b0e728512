"""Unit tests of the hooks between Snakemake and the steps: stale outputs removed when a run
starts (steps.core.stale), a failed step's error under Snakemake's message
(steps.core.step_errors), unknown targets (steps.core.targets)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace

from steps.core import stale, step_errors, targets


@dataclass(eq=False)  # hashable by identity, like Snakemake's jobs
class _Job:
    name: str
    output: list = field(default_factory=list)


def _job(name, outputs):
    return _Job(name, outputs)


def test_stale_outputs_are_those_below_a_rerun(tmp_path):
    files = {n: tmp_path / n for n in ("a", "b", "c", "d")}
    for f in files.values():
        f.write_text("x")
    a, b, c, d = (_job(n, [str(files[n])]) for n in "abcd")
    # a → b → c, and d alone; a and d rerun for their own reasons, b and c because a does
    deps = {a: {}, b: {a: set()}, c: {b: set()}, d: {}}
    assert stale.stale_outputs([a, b, c, d], deps) == sorted([str(files["b"]), str(files["c"])])
    # nothing reruns below d: d keeps its output until it starts
    assert stale.stale_outputs([d], deps) == []


def test_remove_handles_files_and_directories(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x").write_text("x")
    (tmp_path / "f").write_text("y")
    stale.remove([str(tmp_path / "dir"), str(tmp_path / "f")])
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_removed_in_a_dry_run_or_with_touch(tmp_path):
    f = tmp_path / "b"
    f.write_text("x")
    a, b = _job("a", []), _job("b", [str(f)])
    dag = SimpleNamespace(needrun_jobs=lambda: [a, b], dependencies={a: {}, b: {a: set()}})
    for dry, touch in ((True, False), (False, True)):
        assert stale.remove_stale(SimpleNamespace(dryrun=dry, touch=touch, dag=dag)) == []
    assert f.exists()
    said = []
    assert stale.remove_stale(SimpleNamespace(dryrun=False, touch=False, dag=dag), say=said.append) == [str(f)]
    assert not f.exists() and "removed 1 output(s)" in said[0]


def test_last_error_prefers_the_error_line(tmp_path):
    log = tmp_path / "s.log"
    log.write_text("12:00 paperzoo start\nerror: teacher.steps must be ≥ 1\n")
    assert step_errors.last_error(log) == "teacher.steps must be ≥ 1"
    log.write_text("Traceback (most recent call last):\n  File x\nKeyError: 'y'\n\n")
    assert step_errors.last_error(log) == "KeyError: 'y'"
    assert step_errors.last_error(tmp_path / "missing.log") is None


def test_handler_echoes_the_step_error_under_a_job_error(tmp_path):
    log = tmp_path / "t.log"
    log.write_text("error: missing dataset x.npz; regenerate it\n")
    logger = logging.getLogger("test_seams_echo")
    logger.propagate = False
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger.addHandler(Keep())
    step_errors.install(logger)
    step_errors.install(logger)  # idempotent
    logger.error("Error in rule x", extra={"event": "job_error", "log": [f"{log} (check log file(s))"]})
    logger.error("something else")
    assert seen == ["Error in rule x", f"step error ({log}): missing dataset x.npz; regenerate it", "something else"]


def test_unknown_target_lists_the_papers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["/x/bin/snakemake", "-c2", "instaflw", "results/instaflow/fid.json", "--config", "scale=smoke"]
    assert targets.from_argv(argv) == ["instaflw", "results/instaflow/fid.json"]
    assert targets.from_argv(["python", "-m", "other"]) == []
    rules = ["all", "index", "instaflow", "instaflow_teacher", "monolith"]
    assert targets.unknown(["instaflw", "instaflow", "results/x.json"], rules) == ["instaflw"]
    msg = targets.message("instaflw", ["instaflow", "monolith"], rules)
    assert "did you mean instaflow?" in msg and "papers: instaflow, monolith" in msg and "all, index" in msg


def test_check_argv_parses_only_when_a_word_could_be_an_unknown_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rules = ["all", "instaflow"]
    assert targets.check_argv(["snakemake", "-c", "2", "instaflow", "--config", "scale=smoke"], rules) == []
    assert targets.check_argv(["snakemake", "instaflw", "-n", "--cores", "2"], rules) == ["instaflw"]
