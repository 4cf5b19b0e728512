"""HESSO through Snakemake and its full-scale code path: the smoke DAG end to end in a fresh
copy of the repository, determinism, one-line errors, dry runs of the mini and full DAGs, and
fetch → data → partition → train → evaluate at full scale on a fixture of the CIFAR-10 release
with a tiny random ResNet18 (CPU)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from steps.core import checkpoint, cli, metrics
from tests.conftest import cifar10_release, smoke_copy, snakemake


@pytest.fixture(scope="module")
def hesso_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "hesso")


def test_smoke_dag_end_to_end(hesso_smoke):
    res = hesso_smoke / "results" / "hesso"
    for name in ("accuracy", "sensitivity", "equivalence"):
        rec = metrics.read(res / f"{name}.json")  # validates against the schema
        assert rec["scale"] == "smoke" and rec["paper"] == "hesso"
    acc = metrics.read(res / "accuracy.json")["values"]["runs"]
    assert set(acc) == {"dense", "hesso_s50", "cric_s70", "dhspg_s50"}
    assert abs(acc["hesso_s50"]["group_sparsity"] - 0.5) <= 0.02 and acc["hesso_s50"]["params"] < acc["dense"]["params"]
    assert acc["cric_s70"]["cric_restore_exact"] == 1.0
    assert metrics.read(res / "equivalence.json")["values"]["max"] < 1e-4
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    for fig in ("acc_vs_sparsity.png", "acc_vs_flops.png", "sensitivity.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    for job in ("data", "partition", "train_hesso_s50", "train_cric_s70", "evaluate", "report"):
        assert (hesso_smoke / "benchmarks" / "hesso" / f"{job}.tsv").exists()
        assert "done: work" in (hesso_smoke / "logs" / "hesso" / f"{job}.log").read_text()
    assert not list((hesso_smoke / "models" / "hesso").glob("*.resume.pt"))


def _step(work, module, *args):
    return subprocess.run([sys.executable, "-m", module, "scale=smoke", *args], cwd=work, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(work), "PAPERZOO_ROOT": str(work)})


def test_a_run_is_deterministic(hesso_smoke, tmp_path):
    """The same config and thread count (the rule runs one thread) give bit-identical weights."""
    out = tmp_path / "again.pt"
    r = _step(hesso_smoke, "steps.hesso.train", "threads=1", "io.run=cric_s70", "io.data=data/hesso/images.npz",
              "io.partition=models/hesso/zig_groups.json", f"io.out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    a = checkpoint.load(hesso_smoke / "models" / "hesso" / "cric_s70.pt")["state"]
    b = checkpoint.load(out)["state"]
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    assert a["meta"]["pruned"] == b["meta"]["pruned"] and a["meta"]["cric"]["selected"] == b["meta"]["cric"]["selected"]


def test_matched_run_prunes_as_many_groups_as_its_dhspg_run(hesso_smoke, tmp_path):
    """hesso_matched_s50 takes dhspg_s50's achieved group count as its target; a checkpoint of
    another run is refused."""
    out = tmp_path / "matched.pt"
    args = ["threads=1", "io.run=hesso_matched_s50", "io.data=data/hesso/images.npz", "io.partition=models/hesso/zig_groups.json"]
    r = _step(hesso_smoke, "steps.hesso.train", *args, "io.match=models/hesso/dhspg_s50.pt", f"io.out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    ref = checkpoint.load(hesso_smoke / "models" / "hesso" / "dhspg_s50.pt")["state"]["meta"]
    meta = checkpoint.load(out)["state"]["meta"]
    assert meta["zero_groups"] == ref["zero_groups"] and meta["spec"]["matched_to"] == "dhspg_s50"
    assert meta["spec"]["target"] == ref["zero_groups"] / ref["groups"] and meta["spec"]["nominal_target"] == 0.5
    r = _step(hesso_smoke, "steps.hesso.train", *args, "io.match=models/hesso/hesso_s50.pt", f"io.out={tmp_path / 'x.pt'}")
    assert r.returncode == 2 and "names the DHSPG run" in r.stderr.strip().splitlines()[-1]


def test_bad_input_is_one_error_line(hesso_smoke, tmp_path):
    r = _step(hesso_smoke, "steps.hesso.train", "io.run=nope", "io.data=data/hesso/images.npz",
              "io.partition=models/hesso/zig_groups.json", f"io.out={tmp_path / 'x.pt'}")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: unknown run 'nope'")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    r = _step(hesso_smoke, "steps.hesso.train", "io.run=dense", f"io.data={bad}",
              "io.partition=models/hesso/zig_groups.json", f"io.out={tmp_path / 'x.pt'}")
    assert r.returncode == 3 and "is corrupt" in r.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_dry_run_plans_the_whole_dag(hesso_smoke, scale):
    res = snakemake(hesso_smoke, "-n", "-q", "rules", "--forceall", "hesso", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    rules = ["hesso_data", "hesso_partition", "hesso_train", "hesso_evaluate", "report"]
    for rule in rules + (["hesso_fetch"] if scale == "full" else []):
        assert rule in out, out[-2000:]


def test_full_scale_code_path_on_a_tiny_resnet18(tmp_path):
    from steps.hesso import data, evaluate, fetch, partition, train
    from steps.nn.resnet_cifar import ResNet18

    archive = cifar10_release(tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    common = ["scale=full", "threads=1", "model.width=0.0625", "data.n_train=64", "data.n_test=32", "train.epochs=2", "train.batch=32",
              "train.bn_recal_batches=1", "hesso.start_epoch=0", "hesso.pruning_epochs=1", "hesso.periods=1",
              "cric.start_epoch=0", "cric.pruning_epochs=1", "cric.max_cycles=1", "cric.sampling_steps=1",
              "cric.fixed_batch=32", "evaluate.latency=false", "evaluate.equivalence_images=8", "ckpt.every_s=3600"]
    d = tmp_path / "d"
    fetch.main(cli.load("hesso", "fetch", [*common, f"fetch.cifar10.url=file://{archive}", f"fetch.cifar10.md5={md5}",
                                           f"fetch.cifar10.size={archive.stat().st_size}", f"io.cache={d}/dl",
                                           f"io.out={d}/cifar10", f"io.lock={d}/lock.json"]))
    with pytest.raises(Exception, match="MD5"):
        fetch.main(cli.load("hesso", "fetch", [*common, f"fetch.cifar10.url=file://{archive}", "fetch.cifar10.md5=" + "f" * 32,
                                               f"fetch.cifar10.size={archive.stat().st_size}", f"io.cache={d}/dl2",
                                               f"io.out={d}/c2", f"io.lock={d}/l2.json"]))
    assert not (d / "c2").exists()
    data.main(cli.load("hesso", "data", [*common, f"io.raw={d}/cifar10", f"io.out={d}/images.npz"]))
    partition.main(cli.load("hesso", "partition", [*common, f"io.out={d}/zig.json"]))
    train.main(cli.load("hesso", "train", [*common, "io.run=cric_s70", f"io.data={d}/images.npz",
                                           f"io.partition={d}/zig.json", f"io.out={d}/m/cric_s70.pt"]))
    cfg = cli.load("hesso", "evaluate", [*common, f"io.data={d}/images.npz", f"io.partition={d}/zig.json",
                                         f"io.models={d}/m", f"io.results={d}/r"])
    OmegaConf.set_readonly(cfg, False)
    cfg.evaluate.runs = ["cric_s70"]
    cfg.evaluate.sensitivity = {"hesso": ["cric_s70"], "dhspg": []}
    rows = evaluate.main(cfg)
    dense = sum(p.numel() for p in ResNet18(10, 3, 0.0625).parameters())
    assert rows["cric_s70"]["params"] < 0.5 * dense
    assert abs(rows["cric_s70"]["group_sparsity"] - 0.7) <= 0.02
    assert metrics.read(d / "r" / "equivalence.json")["values"]["max"] < 1e-4
