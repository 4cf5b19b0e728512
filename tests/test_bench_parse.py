"""steps.core.bench_parse: the registry filled with scaffolded placeholders, then timed dry runs
(a benchmark: nothing here asserts a time)."""

from __future__ import annotations

from steps.core import bench_parse, dvc_sync


def test_it_fills_the_registry_and_times_the_dry_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("PAPERZOO_ROOT", raising=False)
    rows = bench_parse.run(total=len(dvc_sync.papers(bench_parse.repo_root())) + 1, repeat=1, smoke=False,
                           keep=tmp_path)
    assert rows["placeholders"] == 1 and (tmp_path / "params" / "placeholder_01" / "checks.yaml").exists()
    for key in ("dry_run_one_paper_s", "dry_run_everything_s", "dry_run_everything_cold_cache_s"):
        assert rows[key] > 0
    table = bench_parse.table(rows)
    assert "`snakemake -n results/instaflow/fid.json`" in table and "≤ 2" in table
