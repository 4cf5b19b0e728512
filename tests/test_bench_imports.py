"""steps.core.bench_imports (import time of the step modules) and what the light steps import.

    python -m pytest tests/test_bench_imports.py -q -n0
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from steps.core import bench_imports
from steps.core.sources import module_file
from tests.conftest import ROOT, patient

# `-X importtime` output: children are printed before their parent, indented two spaces deeper.
SAMPLE = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   encodings
import time:       200 |        300 | site
import time:        50 |         50 |       torch._dynamo.utils
import time:       400 |        450 |     torch._dynamo
import time:      1000 |       1450 |   torch
import time:        20 |         20 |   numpy
import time:        30 |       1500 | steps.x.common
import time:         5 |       1505 | steps.x.step
"""


def test_parse_builds_the_tree_after_the_interpreter_start_up():
    roots = bench_imports.parse(SAMPLE)
    assert [r.name for r in roots] == ["steps.x.common", "steps.x.step"]
    assert [c.name for c in roots[0].children] == ["torch", "numpy"]
    assert roots[0].children[0].children[0].name == "torch._dynamo"


def test_attribute_splits_watched_subpackages_and_names_the_step_module_that_pulled_them():
    times, via = bench_imports.attribute(bench_imports.parse(SAMPLE))
    assert times["torch"] == pytest.approx(1000e-6) and times["torch._dynamo"] == pytest.approx(450e-6)
    assert via == {"torch": "steps.x.common", "torch._dynamo": "steps.x.common", "numpy": "steps.x.common"}


def test_summarize_flags_heavy_packages_the_step_does_not_import_itself():
    roots = bench_imports.parse(SAMPLE)
    row = bench_imports.summarize("steps.x.step", roots, mine={"numpy"})
    assert row.import_s == round(3005e-6, 4)
    assert row.flags == ["torch via steps.x.common", "torch._dynamo via steps.x.common"]
    assert bench_imports.summarize("steps.x.step", roots, mine={"torch"}).flags == ["torch._dynamo via steps.x.common"]


def test_rule_modules_are_the_modules_the_rules_run():
    mods = bench_imports.rule_modules(["instaflow"], ROOT)
    assert {"steps.instaflow.teacher", "steps.instaflow.sd.pairs", "steps.core.report", "steps.instaflow.figures"} <= set(mods)
    assert all(module_file(m, ROOT) is not None for m in mods)
    assert "steps.instaflow.sd.pairs.shard_path" not in mods  # a function named in a comment, not a module


def test_command_measures_a_cheap_module_and_writes_json(tmp_path):
    out = tmp_path / "imports.json"
    res = subprocess.run([sys.executable, "-m", "steps.core.bench_imports", "--module", "steps.core.errors",
                          "--repeat", "1", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=patient(60))
    assert res.returncode == 0, res.stderr
    assert "| steps.core.errors |" in res.stdout
    (row,) = json.loads(out.read_text())["rows"]
    assert row["module"] == "steps.core.errors" and row["import_s"] > 0 and row["cpu_s"] > 0
    assert "torch" not in row["packages"]


def test_logs_mode_reads_the_imports_of_jobs(tmp_path):
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "teacher.log").write_text("12:00 paperzoo starting\n" + SAMPLE + "12:01 paperzoo done\n")
    (tmp_path / "paper" / "quiet.log").write_text("no import lines here\n")
    (row,) = bench_imports.from_logs(tmp_path)
    assert row.module == "paper/teacher" and row.flags == ["torch._dynamo 0.00 s"]
    assert bench_imports.subtree_s(bench_imports.parse(SAMPLE), "torch._dynamo") == pytest.approx(450e-6)


# Steps whose work needs no torch: data generation, fetches, tables, reports, figures. Importing
# torch costs each of them ≈ 2 s of CPU per job; a structural check, not a timing one.
TORCH_FREE = (
    "steps.core.report", "steps.core.index",
    "steps.instaflow.digits", "steps.instaflow.captions",
    "steps.fast_sparse_convnets.bench_kernels", "steps.slimflow.fetch", "steps.monolith.stream",
    "steps.monolith.fetch", "steps.linf_regression.sanity", "steps.linf_regression.timing",
    "steps.teddy.graph", "steps.teddy.score", "steps.otov2.fetch", "steps.hesso.fetch", "steps.asd.gen_data",
    "steps.textatlas5m.render", "steps.gpusq_vit.data",
)


def figures_modules() -> list[str]:
    """Every paper's figures module: the report step imports it (params report.figures)."""
    from steps.core import config

    return sorted({config.resolve(p, "smoke")["report"]["figures"] for p in config.papers()})


def test_light_steps_do_not_import_torch():
    mods = (*TORCH_FREE, *figures_modules())
    code = ("import importlib, sys\n"
            f"for m in {mods!r}:\n"
            "    importlib.import_module(m)\n"
            "    if 'torch' in sys.modules:\n"
            "        sys.exit(f'{m} imports torch')\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=patient(120))
    assert res.returncode == 0, res.stderr[-2000:]


def test_the_cuckoo_step_does_not_import_the_stream_generators_libraries():
    """steps.monolith.cuckoo draws random IDs from steps.data.click_stream, whose pandas and scipy
    only the stream's generator uses."""
    code = ("import sys, steps.monolith.cuckoo\n"  # numba imports scipy's bare package, not these
            "print(sorted(m for m in ('pandas', 'scipy.optimize', 'scipy.special') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=patient(120), check=True)
    assert res.stdout.strip() == "[]"
