"""The new-paper scaffold (steps.core.new_paper): in a fresh copy of the repository, a scaffolded
paper passes lint, the registry/params/checks/claims/DVC checks and its own generated test (its
smoke DAG end to end), and says in its report that it is a placeholder."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from steps.core import new_paper
from steps.core.errors import ConfigError
from tests.conftest import ROOT, copy_repo, patient, snakemake

SLUG = "zz_scaffolded"


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    work = copy_repo(tmp_path_factory.mktemp("new_paper"))
    res = subprocess.run([sys.executable, "-m", "steps.core.new_paper", SLUG, "--family", "test family",
                          "--title", "A Paper About Things"], cwd=work, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PAPERZOO_ROOT": str(work)}, timeout=patient(300))
    assert res.returncode == 0, res.stderr[-3000:]
    return work


def test_it_writes_every_file_and_registers_the_paper(scaffolded):
    for dest in new_paper.FILES.values():
        assert (scaffolded / dest.format(slug=SLUG)).is_file(), dest
    assert yaml.safe_load((scaffolded / "workflow" / "papers.yaml").read_text())["papers"][-1] == SLUG
    readme = (scaffolded / "README.md").read_text()
    assert f"| [{SLUG}](docs/papers/{SLUG}.md) | PLACEHOLDER (test family): A Paper About Things" in readme
    assert f"  {SLUG}:" in (scaffolded / "dvc.yaml").read_text()


def test_it_passes_lint_and_the_dvc_check(scaffolded):
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "steps", "tests", "--quiet"], cwd=scaffolded,
                          capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    assert snakemake(scaffolded, "--lint").returncode == 0
    check = subprocess.run([sys.executable, "-m", "steps.core.dvc_sync", "generate", "--check"], cwd=scaffolded,
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PAPERZOO_ROOT": str(scaffolded)})
    assert check.returncode == 0, check.stderr[-2000:]


def test_its_generated_tests_pass_and_its_report_says_placeholder(scaffolded):
    """The generated test runs the smoke DAG end to end and reads the report (PLACEHOLDER, no
    claim holding); the registry-wide tests of checks and claims pass for it too."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n0",
                          f"tests/test_{SLUG}.py", "tests/test_checks.py", "tests/test_claims.py", "-k",
                          f"{SLUG} or not ["], cwd=scaffolded, capture_output=True, text=True, timeout=patient(600),
                         env={"PATH": "/usr/bin:/bin", "PAPERZOO_ROOT": str(scaffolded)})
    assert res.returncode == 0, res.stdout[-4000:]
    assert f"tests/test_{SLUG}.py ...." in res.stdout or "passed" in res.stdout


def test_a_taken_or_bad_slug_writes_nothing(tmp_path):
    with pytest.raises(ConfigError, match="already in workflow/papers.yaml"):
        new_paper.check(ROOT, "instaflow")
    with pytest.raises(ConfigError, match="lower-case letters"):
        new_paper.check(ROOT, "Bad-Slug")
