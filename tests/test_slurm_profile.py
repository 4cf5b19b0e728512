"""The slurm profile without a cluster: `--profile slurm` resolves from the repository root, a
run through it is full scale unless --config says otherwise, the CI variant differs only in
polling, and at full scale each InstaFlow GPU rule's sbatch line carries its params' request
(sbatch is a stand-in that records its command line and refuses the job)."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, copy_repo, snakemake

PROFILES = ROOT / "workflow" / "profiles"


def planned_rules(res) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^(?:local)?rule (\w+):", res.stdout + res.stderr, re.M)}


def test_profile_is_found_through_the_root_symlink():
    link = ROOT / "slurm"
    assert link.is_symlink() and os.readlink(link) == "workflow/profiles/slurm"
    assert (link / "config.yaml").is_file()
    conf = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert conf["executor"] == "slurm" and conf["slurm-status-command"] == "squeue"
    assert conf["rerun-incomplete"] is True and conf["retries"] >= 1 and conf["latency-wait"] > 0


@pytest.mark.parametrize("extra, scale", [
    ([], "full"),                                              # the profile's default
    (["--config", "scale=smoke"], "smoke"),                    # the command line wins
    (["--config", "instaflow=distill.lr=0.0001"], "full"),     # other --config keys keep it
    (["--config", "scale=mini", "instaflow=distill.lr=0.0001"], "mini"),
])
def test_profile_defaults_to_full_scale_and_config_overrides_it(extra, scale):
    res = snakemake(ROOT, "--profile", "slurm", "-n", "--forceall", "results/instaflow/fid.json", *extra, timeout=240)
    rules = planned_rules(res)
    assert ("instaflow_fetch" in rules) is (scale == "full"), rules
    assert ("instaflow_teacher" in rules) is (scale != "full"), rules
    if scale != "full":
        assert f"scale={scale}" in res.stdout + res.stderr  # the step arguments name the scale


def test_ci_profile_differs_from_the_real_one_only_in_polling():
    real = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    ci = yaml.safe_load((PROFILES / "slurm-ci" / "config.yaml").read_text())
    polling = {"slurm-init-seconds-before-status-checks", "seconds-between-status-checks"}
    for conf, d in ((real, PROFILES / "slurm"), (ci, PROFILES / "slurm-ci")):  # shared files by path
        for key in ("configfile", "slurm-partition-config"):
            conf[key] = (d / conf[key]).resolve()
    assert {k: v for k, v in real.items() if k not in polling} == {k: v for k, v in ci.items() if k not in polling}
    assert all(ci[k] < real[k] for k in polling)


def _touch(path: Path, t: float, directory=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        path.mkdir(exist_ok=True)
    else:
        path.write_bytes(b"")
    os.utime(path, (t, t))


@pytest.fixture(scope="module")
def full_sbatch_lines(tmp_path_factory):
    """{rule: sbatch command line} of each InstaFlow GPU rule at full scale, one rule at a time:
    every input is a placeholder (older than what depends on it), the rule's output is missing,
    and sbatch records its arguments and refuses the job."""
    work = copy_repo(tmp_path_factory.mktemp("full"))
    bin_dir = tmp_path_factory.mktemp("bin")
    record = bin_dir / "sbatch.log"
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {record}\necho "refused by the test" >&2\nexit 1\n')
    for tool in ("squeue", "sacct", "scontrol", "sinfo"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    t0 = time.time() - 3600
    for f in work.rglob("*"):  # the code: older than every placeholder
        if f.is_file() and ".git" not in f.parts:
            os.utime(f, (t0 - 100, t0 - 100))
    d, m = work / "data" / "instaflow", work / "models" / "instaflow"
    _touch(d / "scale.txt", t0 - 50)  # the scale stamp every rule reads (rule scale_stamp)
    for asset in ("sd15", "coco", "laion", "lpips", "inception", "clip"):
        _touch(d / asset, t0, directory=True)
        _touch(d / f"{asset}.lock.json", t0)
    _touch(d / "prompts_train.parquet", t0 + 1)
    _touch(d / "prompts_coco.parquet", t0 + 1)
    for i in range(250):
        _touch(d / "pairs_sd" / f"shard{i:04d}.npz", t0 + 2)
    _touch(m / "rf2.pt", t0 + 3)
    _touch(m / "distill_sd.pt", t0 + 3)
    for i in range(250):
        _touch(d / "pairs_rf2" / f"shard{i:04d}.npz", t0 + 4)
    _touch(m / "distill_rf2.pt", t0 + 5)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    lines = {}
    for rule, target in (("instaflow_pairs", d / "pairs_sd" / "shard0000.npz"), ("instaflow_reflow", m / "rf2.pt"),
                         ("instaflow_distill", m / "distill_sd.pt"), ("instaflow_evaluate", None)):
        if target is not None:
            target.rename(target.with_suffix(".away"))
        rel = str(target.relative_to(work)) if target else "results/instaflow/fid.json"
        # the CI variant (the same profile, polling aside), so the refused job is noticed at once
        res = snakemake(work, "--profile", "workflow/profiles/slurm-ci", "--retries", "0", rel, "--config", "scale=full",
                        check=False, timeout=240, env=env)
        calls = record.read_text().splitlines() if record.exists() else []
        assert len(calls) == 1, (rule, calls, res.stdout[-3000:], res.stderr[-3000:])
        assert f"--comment rule_{rule}" in calls[0], calls[0]
        lines[rule] = calls[0]
        record.unlink()
        if target is not None:
            target.with_suffix(".away").rename(target)
    return lines


@pytest.mark.parametrize("rule, phase", [("instaflow_pairs", "pairs"), ("instaflow_reflow", "reflow"),
                                         ("instaflow_distill", "distill"), ("instaflow_evaluate", "evaluate")])
def test_full_scale_sbatch_line_carries_the_params_request(full_sbatch_lines, rule, phase):
    from omegaconf import OmegaConf

    from steps.core import config, resources

    site = resources.load_site(PROFILES / "slurm" / "site.yaml")
    table = OmegaConf.to_container(config.compose("instaflow", "full").resources, resolve=True)
    want = resources.rule_resources(table, phase, site)
    line = full_sbatch_lines[rule].split(" --wrap")[0]
    gpus = f"--gpus={want['gpu_model']}:{want['gpu']}" if "gpu_model" in want else f"--gpus={want['gpu']}"
    for flag in (gpus, f"--cpus-per-gpu={want['cpus_per_gpu']}", f"--mem {want['mem_mb']}", f"-t {want['runtime']}",
                 "-p gpu", "--requeue", "--signal=TERM@300"):
        assert flag in line, (flag, line)
    assert "--ntasks" not in line and "--cpus-per-task" not in line
    print(f"\n{rule}: {line}")


def test_site_account_and_qos_reach_sbatch_through_the_environment(tmp_path):
    """The site file's account and QoS are exported for sbatch (SBATCH_ACCOUNT, SBATCH_QOS) by the
    workflow itself, so they apply to every job of every rule file."""
    work = copy_repo(tmp_path / "w")
    site = work / "workflow" / "profiles" / "slurm" / "site.yaml"
    text = site.read_text().replace("account: null", "account: proj42").replace("qos: null", "qos: short")
    site.write_text(text)
    (work / "Snakefile").write_text((work / "Snakefile").read_text() + (
        '\nrule show_env:\n    output: "env.txt"\n    log: "logs/env.log"\n'
        '    shell: "echo $SBATCH_ACCOUNT $SBATCH_QOS > {output} 2> {log}"\n'))
    snakemake(work, "-c1", "env.txt", "--config", "scale=smoke")
    assert (work / "env.txt").read_text().split() == ["proj42", "short"]
    shutil.rmtree(work)
