"""Cluster resources, one convention for every paper and scale: GPU rules carry their params'
gpu, gpu_model, cpus_per_gpu, mem_mb and runtime; CPU rules never ask for a GPU. Checked on the
jobs Snakemake plans (a dry run through the slurm profile), so what is checked is what sbatch gets."""

from __future__ import annotations

import re

import pytest
import yaml
from omegaconf import OmegaConf

from steps.core import config, resources
from steps.core.errors import ConfigError
from tests.conftest import ROOT, snakemake

PAPERS = yaml.safe_load((ROOT / "workflow" / "papers.yaml").read_text())["papers"]
SITE = {"gpu_types": {"a100": "a100_80g", "v100": None}}


def test_gpu_rule_gets_gpu_keys_and_cpu_rule_none():
    table = {"default": {"mem_mb": 1000, "runtime": 10},
             "train": {"gpu": 2, "gpu_model": "a100", "cpus_per_gpu": 4, "mem_mb": 9000, "runtime": 60},
             "prep": {"threads": 4}}
    assert resources.rule_resources(table, "train", SITE) == {
        "gpu": 2, "gpu_model": "a100_80g", "cpus_per_gpu": 4, "mem_mb": 9000, "runtime": 60}
    assert resources.rule_resources(table, "prep", SITE) == {"mem_mb": 1000, "runtime": 10}
    assert resources.rule_resources(table, "unlisted") == {"mem_mb": 1000, "runtime": 10}
    assert resources.rule_resources({"t": {"gpu": 1}}, "t") == {"gpu": 1, "cpus_per_gpu": 1}


def test_site_gpu_types_map_pass_through_or_drop_the_model():
    assert resources.gpu_type("a100", SITE) == "a100_80g"
    assert resources.gpu_type("h100", SITE) == "h100"       # not listed: as params say
    assert resources.gpu_type("v100", SITE) is None         # null: any GPU
    assert resources.gpu_type(None, SITE) is None
    assert "gpu_model" not in resources.rule_resources({"t": {"gpu": 1, "gpu_model": "v100"}}, "t", SITE)


@pytest.mark.parametrize("table, match", [
    ({"default": {"gpu": 1}}, "resources.default may not set gpu"),
    ({"t": {"gpu_model": "a100"}}, "sets gpu_model or cpus_per_gpu but no gpu"),
    ({"t": {"gpus": 1}}, "unknown key"),
])
def test_bad_resources_tables_are_refused(table, match):
    with pytest.raises(ConfigError, match=match):
        resources.rule_resources(table, "t")


def test_site_file_and_its_environment(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("account: proj42\nqos: null\ngpu_types: {a100: a100}\npartitions: {gpu: {max_gpu: 4}}\n")
    loaded = resources.load_site(site)
    assert resources.site_env(loaded) == {"SBATCH_ACCOUNT": "proj42"}
    assert resources.site_env(resources.load_site(tmp_path / "none.yaml")) == {}
    site.write_text("acount: x\n")
    with pytest.raises(ConfigError, match="unknown key"):
        resources.load_site(site)


def test_committed_site_file_is_valid_for_the_plugin():
    from snakemake_executor_plugin_slurm.partitions import read_partition_file

    path = ROOT / "workflow" / "profiles" / "slurm" / "site.yaml"
    site = resources.load_site(path)
    parts = {p.name: p for p in read_partition_file(path)}
    assert parts and any(p.limits.max_gpu > 0 for p in parts.values())
    assert any(p.limits.max_gpu == 0 for p in parts.values())
    assert site["account"] is None and site["qos"] is None  # the test cluster needs neither


def test_check_job_reports_each_breach():
    table = {"default": {"mem_mb": 1000, "runtime": 10}, "train": {"gpu": 1, "gpu_model": "a100", "mem_mb": 5000, "runtime": 60}}
    ok = {"gpu": "1", "gpu_model": "a100", "cpus_per_gpu": "1", "mem_mb": "5000", "runtime": "60"}
    assert resources.check_job(table, "train", ok) == []
    assert resources.check_job(table, "train", {**ok, "gpu_model": None}) == ["train: gpu_model=None but params (and the site file) say a100"]
    assert resources.check_job(table, "prep", {"mem_mb": "1000", "runtime": "10", "gpu": "1"}) == ["prep: a CPU rule asks for gpu=1"]


def planned_jobs(text: str) -> list[tuple[str, dict]]:
    """(rule, resources) of every job in a dry run's output; a job with a `paper` wildcard (the
    generic report) also carries it as resources["_paper"]."""
    jobs, rule, paper = [], None, None
    for line in text.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line)
        if m:
            rule, paper = m.group(1), None
        m = re.match(r"^\s+wildcards: .*\bpaper=(\w+)", line)
        if m:
            paper = m.group(1)
        m = re.match(r"^\s+resources: (.*)$", line)
        if m and rule:
            job = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
            jobs.append((rule, {**job, "_paper": paper} if paper else job))
            rule = None
    return jobs


@pytest.mark.parametrize("scale", config.SCALES)
def test_every_papers_rules_follow_the_resource_convention(scale):
    """Every job of every paper at every scale, as planned through the slurm profile: GPU rules
    ask for exactly their params' GPUs, model (site-mapped), CPUs, memory and time; CPU rules for
    no GPU. Smoke and mini have GPU rules too, so the SLURM tests exercise GPU requests."""
    res = snakemake(ROOT, "-n", "--profile", "slurm", "--forceall", "--config", f"scale={scale}", timeout=240)
    jobs = planned_jobs(res.stdout + res.stderr)
    assert jobs, res.stdout[-2000:]
    site = resources.load_site(ROOT / "workflow" / "profiles" / "slurm" / "site.yaml")
    problems, gpu_rules = [], set()
    for paper in PAPERS:
        table = OmegaConf.to_container(config.compose(paper, scale).resources, resolve=True)
        for rule, job in jobs:  # the generic report rule: only this paper's own report job
            if (rule == "report" and job.get("_paper", paper) == paper) or rule.startswith(f"{paper}_"):
                phase = rule.removeprefix(f"{paper}_")
                job = {k: v for k, v in job.items() if k != "_paper"}
                problems += resources.check_job(table, phase, job, site)
                if resources.gpus(table, phase):
                    gpu_rules.add(rule)
                    assert job.get("slurm_extra", "").startswith("--signal=TERM@"), (rule, job)
        for rule, job in jobs:  # rules of no paper (the index) ask for no GPU either
            if not any(rule.startswith(f"{p}_") for p in PAPERS) and rule != "report":
                problems += resources.check_job({}, rule, job, site)
    assert not problems, "\n".join(problems)
    assert gpu_rules, f"no GPU rule at {scale}"


def test_resources_table_with_an_unknown_phase_is_refused():
    resources.check_table({"default": {"mem_mb": 1}, "teacher": {"gpu": 1}}, ["teacher", "reflow"])
    with pytest.raises(ConfigError, match="unknown phase.*teachr"):
        resources.check_table({"teachr": {"gpu": 1}}, ["teacher", "reflow"])


def test_a_typo_in_a_resources_table_stops_the_workflow_before_any_job(tmp_path):
    from tests.conftest import copy_repo

    work = copy_repo(tmp_path / "w")
    smoke = work / "params" / "instaflow" / "smoke.yaml"
    smoke.write_text(smoke.read_text().replace("  teacher: {gpu: 1", "  teachr: {gpu: 1"))
    res = snakemake(work, "-n", "instaflow", "--config", "scale=smoke", check=False)
    assert res.returncode != 0 and "error: resources: unknown phase(s) teachr" in res.stdout + res.stderr
