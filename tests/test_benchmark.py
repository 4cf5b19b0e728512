"""steps.core.benchmark --summarize: an earlier run's benchmark files, labelled with the scale
that run used (its scale stamp, else its metrics files), for one paper or every paper that ran.
A hand-made run directory: no Snakemake here (the smoke DAG's files: tests/test_workflow.py).

    python -m pytest tests/test_benchmark.py -q -n0
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.core import benchmark


def fake_run(root: Path, paper: str, stamp: str | None, metrics_scale: str | None = None) -> None:
    """benchmarks/<paper>/<job>.tsv and logs/<paper>/<job>.log as a Snakemake run leaves them."""
    (root / "benchmarks" / paper).mkdir(parents=True)
    (root / "logs" / paper).mkdir(parents=True)
    for job, wall in (("teacher_s0", 4.0), ("report", 1.0)):
        (root / "benchmarks" / paper / f"{job}.tsv").write_text(f"s\th:m:s\tmax_rss\n{wall}\t0:00:0{int(wall)}\t120.5\n")
        (root / "logs" / paper / f"{job}.log").write_text(f"done: work {wall / 2} s, start-up and imports 0.5 s\n")
    if stamp:
        (root / "data" / paper).mkdir(parents=True)
        (root / "data" / paper / "scale.txt").write_text(stamp + "\n")
    if metrics_scale:
        (root / "results" / paper).mkdir(parents=True)
        (root / "results" / paper / "fid.json").write_text(json.dumps({"scale": metrics_scale}))


def test_summarize_reads_the_scale_the_run_used(tmp_path, capsys):
    fake_run(tmp_path, "instaflow", stamp="smoke")
    fake_run(tmp_path, "lrd_balmer", stamp=None, metrics_scale="mini")  # no stamp: the metrics say
    (tmp_path / "benchmarks" / "index.tsv").write_text("s\n0.1\n")  # not a paper
    benchmark.main(["--summarize", str(tmp_path)])
    out = capsys.readouterr().out
    assert "## instaflow, smoke scale" in out and "## lrd_balmer, mini scale" in out
    s = json.loads((tmp_path / "benchmarks" / "instaflow_smoke.json").read_text())
    assert s["scale"] == "smoke" and s["n_jobs"] == 2 and s["work_s"] == 2.5
    assert json.loads((tmp_path / "benchmarks" / "lrd_balmer_mini.json").read_text())["scale"] == "mini"
    assert not (tmp_path / "benchmarks" / "instaflow_mini.json").exists()  # never labelled with the default


def test_summarize_one_paper_and_refuse_a_wrong_scale(tmp_path, capsys):
    fake_run(tmp_path, "instaflow", stamp="smoke")
    benchmark.main(["instaflow", "--summarize", str(tmp_path), "--scale", "smoke"])
    assert "## instaflow, smoke scale" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="is at smoke scale, not mini"):
        benchmark.main(["instaflow", "--summarize", str(tmp_path), "--scale", "mini"])
    with pytest.raises(SystemExit, match="no benchmark files"):
        benchmark.main(["teddy", "--summarize", str(tmp_path)])
    with pytest.raises(SystemExit, match="no benchmark files"):
        benchmark.main(["--summarize", str(tmp_path / "nothing")])


def test_run_scale_without_stamp_or_agreeing_metrics_is_unknown(tmp_path):
    assert benchmark.run_scale(tmp_path, "p") is None
    (tmp_path / "results" / "p").mkdir(parents=True)
    for name, scale in (("a", "smoke"), ("b", "mini")):
        (tmp_path / "results" / "p" / f"{name}.json").write_text(json.dumps({"scale": scale}))
    assert benchmark.run_scale(tmp_path, "p") is None  # two scales: the stamp would have said
