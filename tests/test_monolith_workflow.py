"""Monolith's DAG through Snakemake: smoke end to end in a fresh copy of the repository,
determinism of a step, the experiments smoke leaves out (E2, E4) in process, bad input, and
dry runs at all three scales (full: the GroupLens fetch)."""

from __future__ import annotations

import json

import pytest

from steps.core import metrics
from steps.core.cli import load
from steps.core.errors import ArtifactError
from tests.conftest import ROOT, smoke_copy, snakemake


@pytest.fixture(scope="module")
def mono_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "monolith")


def test_smoke_dag_end_to_end(mono_smoke):
    res = mono_smoke / "results" / "monolith"
    for name in ("cuckoo", "collisionless", "sync"):
        rec = metrics.read(res / f"{name}.json")
        assert rec["scale"] == "smoke" and rec["paper"] == "monolith"
    e1 = json.loads((res / "collisionless.json").read_text())["values"]
    assert set(e1["auc"]) == {"cuckoo", "cuckoo_filtered", "hash_2p14", "hash_eq"}   # smoke.yaml collisionless.run
    assert e1["collisions"]["cuckoo"] == 0 and e1["collisions"]["hash_2p14"] > 0
    per = json.loads((res / "collisionless.json").read_text())["extra"]["per_feature"]
    for f, ref in per["cuckoo_filtered"].items():   # equal memory: the hash table gets the allocated bytes
        assert ref["bytes"] < ref["alloc_bytes"] and per["hash_eq"][f]["alloc_bytes"] <= ref["alloc_bytes"]
        assert per["hash_eq"][f]["alloc_bytes"] > ref["alloc_bytes"] - 2 * 4 * 16   # less than one row short (dim 16)
    sync = json.loads((res / "sync.json").read_text())["values"]
    assert set(sync["auc"]) == {"never", "s1_64", "trainer"}
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    for fig in ("auc_vs_memory.png", "sync_by_day.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    for rule in ("stream", "cuckoo", "collisionless", "sync", "report"):
        assert (mono_smoke / "benchmarks" / "monolith" / f"{rule}.tsv").exists()
        assert "done: work" in (mono_smoke / "logs" / "monolith" / f"{rule}.log").read_text()
    assert not list(res.glob("*.resume.pt"))


@pytest.mark.slow
def test_smoke_rerun_with_nothing_changed_runs_nothing(mono_smoke):
    res = snakemake(mono_smoke, "-n", "-c2", "monolith", "--config", "scale=smoke")
    assert "Nothing to be done" in res.stdout + res.stderr


@pytest.fixture(scope="module")
def smoke_stream(tmp_path_factory):
    from steps.monolith import stream

    path = tmp_path_factory.mktemp("mono_stream") / "stream.parquet"
    stream.main(load("monolith", "stream", ["scale=smoke", f"io.out={path}"]))
    return path


def test_two_runs_of_one_config_give_identical_metrics(smoke_stream, tmp_path):
    from steps.monolith import sync

    argv = ["scale=smoke", f"io.stream={smoke_stream}"]
    a = sync.main(load("monolith", "sync", [*argv, f"io.metrics={tmp_path / 'a.json'}"]))
    b = sync.main(load("monolith", "sync", [*argv, f"io.metrics={tmp_path / 'b.json'}"]))
    assert a == b
    ra, rb = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert ra["values"] == rb["values"] and ra["config_hash"] == rb["config_hash"]


def test_memory_and_failover_run_at_smoke_size(smoke_stream, tmp_path):
    """E2 and E4 are not in the smoke DAG (spec: E1, E3 only); their code runs here."""
    from steps.monolith import failover, memory

    argv = ["scale=smoke", f"io.stream={smoke_stream}", "memory.min_counts=[1,5]"]
    m = memory.main(load("monolith", "memory", [*argv, f"io.metrics={tmp_path / 'm.json'}"]))
    assert set(m["rows"]) == {"f1_tinf", "f1_t3", "f5_tinf", "f5_t3"}
    assert m["rows"]["f5_tinf"]["mean"] < m["rows"]["f1_tinf"]["mean"]
    f = failover.main(load("monolith", "failover", ["scale=smoke", f"io.stream={smoke_stream}",
                                                    f"io.metrics={tmp_path / 'f.json'}"]))
    assert set(f["auc"]) == {"none", "age1", "age1_8"} and len(f["curve"]["none"]) == 4
    metrics.read(tmp_path / "f.json")


def test_unknown_arm_is_one_clear_error(smoke_stream, tmp_path):
    from steps.core.errors import ConfigError
    from steps.monolith import sync

    with pytest.raises(ConfigError, match="sync.run names unknown arm.*s1_6; valid: never, s1, s1_8, s1_64"):
        sync.main(load("monolith", "sync", ["scale=smoke", "sync.run=[s1_6]", f"io.stream={smoke_stream}",
                                            f"io.metrics={tmp_path / 'x.json'}"]))


def test_a_corrupt_stream_is_one_clear_error(tmp_path):
    from steps.monolith import sync

    bad = tmp_path / "stream.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ArtifactError, match="click stream .* is corrupt"):
        sync.main(load("monolith", "sync", ["scale=smoke", f"io.stream={bad}", f"io.metrics={tmp_path / 'x.json'}"]))


@pytest.mark.parametrize("scale", ["smoke", "mini", "full"])
def test_dry_run_plans_the_monolith_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "monolith", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    assert "monolith_collisionless" in out and "monolith_sync" in out and "report" in out
    assert ("monolith_movielens" in out) == (scale != "smoke")
    assert ("monolith_fetch" in out) == (scale == "full")


def test_bad_override_fails_before_any_job():
    res = snakemake(ROOT, "-n", "monolith", "--config", "monolith=sync.intervalz=1", check=False)
    assert res.returncode != 0
    assert "error: unknown key 'sync.intervalz' for monolith; valid keys at sync: intervals" in res.stdout + res.stderr
