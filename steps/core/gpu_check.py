"""The GPU check: one command a maintainer runs on a machine with a CUDA GPU to try the
full-scale code paths there and to turn measured step rates into GPU-days.

    bash scripts/gpu_check.sh                 # = python -m steps.core.gpu_check (sized for < 10 min on one H100)
    bash scripts/gpu_check.sh --quick         # InstaFlow's tests only, fewer timed steps
    bash scripts/gpu_check.sh --device cpu --tiny   # the same code with tiny models on CPU (CI, seconds)

(a) tests: the tiny-model full-scale tests (tests/test_*_full.py, those marked `device`) run
    with pytest --device cuda, so every full-scale phase they drive runs on the GPU;
(b) precision: bf16 autocast in steps.core.distributed.backward (steps.core.precision_check), in
    InstaFlow's miniature training phases (steps.instaflow.precision_check) and on a UNet of
    SD 1.5's size with the full-scale reflow loss: fp32 against `auto` (bf16 where the GPU has
    it; on CPU, --tiny checks bf16 itself, since auto means fp32 there);
(c) speed: InstaFlow's full-scale pair sampling, reflow and distillation steps through their own
    code on randomly initialised SD 1.5-sized models (steps.instaflow.sd.bench): samples/s and
    peak GPU memory over timed steps after warm-up;
(d) cost: those rates × params/instaflow/full.yaml's schedule = GPU-days, beside the paper's
    A100-days (params/instaflow/claims.yaml).

Prints tables and writes a JSON record (default benchmarks/gpu_check_<device>[_tiny].json): GPU
name, versions, date, revision, every measurement and how each estimate was computed. Exit
status 0 when every check passed, 1 when one failed, 2 when there is no CUDA GPU (or a usage error).
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from steps.core.config import repo_root
from steps.core.io import write_json
from steps.core.metrics import git_revision

QUICK_TESTS = ["tests/test_instaflow_full.py"]
_DTYPE = {"bf16": "bfloat16", "fp32": "float32"}  # what a precision's matmuls produce
NOTES = [
    "speed does not depend on weight values: the models are randomly initialised at SD 1.5's size (steps.instaflow.sd.arch)",
    "one process on one GPU: the training rules use 8 GPUs per job; GPU-days assume linear scaling (DDP's all-reduce is not timed)",
    "training is timed at the stage's own batch (reflow stage 1: 64) or, for the batches of 1024, at 2 micro-batches a "
    "step; the real step shares one optimizer step among 32, so its cost per sample is at most the measured one",
    "pairs: prompts.n_train pairs per teacher (an estimate in params/instaflow/full.yaml); the paper's 16 A100-days is by "
    "subtraction and its pair count unknown",
    "the paper's GPU-days are A100-days; ours are days of the GPU named above. Paper samples/s per A100 = the stage's "
    "samples / (its A100-days × 86400), arithmetic on the model cards' numbers",
    "evaluation (FID, CLIP score on 5,000 COCO prompts) is not timed",
]


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m steps.core.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--tiny", action="store_true", help="tiny models instead of SD 1.5's size; tests collected, not run")
    p.add_argument("--quick", action="store_true", help="InstaFlow's full tests only, fewer timed steps")
    p.add_argument("--tests", nargs="*", help="test files for (a) (default tests/test_*_full.py)")
    p.add_argument("--workers", type=int, default=4, help="pytest-xdist workers for (a); 0: one process")
    p.add_argument("--out", help="the JSON record (default benchmarks/gpu_check_<device>[_tiny].json)")
    return p.parse_args(argv)


def environment(device: str) -> dict:
    import diffusers
    import torch
    import transformers

    cuda = device == "cuda"
    return {"device": device, "gpu": torch.cuda.get_device_name() if cuda else None,
            "gpu_memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None,
            "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None, "cuda": torch.version.cuda,
            "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "python": sys.version.split()[0], "cpus": os.cpu_count(), "git": git_revision(),
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


def run_tests(a: argparse.Namespace) -> dict:
    """(a) pytest on the device; --tiny only collects (the script's own test must take seconds)."""
    files = a.tests or (QUICK_TESTS if a.quick else sorted(glob.glob("tests/test_*_full.py", root_dir=repo_root())))
    cmd = [sys.executable, "-m", "pytest", *files, "--device", a.device, "-m", "device and not slow", "-q",
           "-p", "no:cacheprovider"]
    if a.tiny:
        cmd.append("--collect-only")
    elif a.workers > 0:
        cmd += ["-n", str(a.workers), "--dist", "loadfile"]
    t0 = time.monotonic()
    # its own process group, so that a timeout stops the xdist workers too (they would hold the GPU)
    proc = subprocess.Popen(cmd, cwd=repo_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=180 if a.quick else 300)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, code = proc.communicate()[0], "timeout"
    lines = [ln for ln in output.splitlines() if ln.strip()]
    return {"command": " ".join(cmd), "returncode": code, "summary": lines[-1] if lines else "", "wall_s": time.monotonic() - t0,
            "collect_only": a.tiny, "ok": code == 0, "tail": "\n".join(lines[-40:])}


def run_precision(a: argparse.Namespace, work: Path) -> list[dict]:
    """(b) fp32 against the tested precision: the core primitive and InstaFlow's mini phases."""
    from steps.core.precision_check import backward_check
    from steps.instaflow import precision_check

    tested = tested_precision(a.device)
    return [backward_check(a.device, tested), *precision_check.check(work / "mini", a.device, tested)]


def tested_precision(device: str) -> str:
    return "auto" if device == "cuda" else "bf16"  # auto is fp32 on a CPU: nothing to compare


def run_bench(a: argparse.Namespace, work: Path) -> tuple[dict, dict, dict, dict]:
    """(c) and (d): measurements, the SD-size precision row, the cost (GPU-days rows), the settings."""
    from steps.core.config import compose
    from steps.instaflow.sd import bench

    overrides = [f"device={a.device}", "ckpt.every_steps=1000000000", "ckpt.every_s=1.0e9"]
    if a.tiny:  # latents 8 × 8 (the tiny UNet's size), small batches, one thread: seconds on a shared CPU
        overrides += ["threads=1", "pairs.resolution=64", "pairs.batch=4", "pairs.ode_steps=2", "pairs.rf2.ode_steps=2",
                      "reflow.micro_batch=2", "distill.micro_batch=2",
                      "distill.stages=[{loss:l2,batch:1024,steps:21500},{loss:lpips,batch:1024,steps:18000,micro_batch:2}]"]
    cfg = compose("instaflow", "full", overrides)
    warmup, steps, pair_batches = (1, 1, 1) if a.tiny else (1, 2, 1) if a.quick else (2, 5, 2)
    b = bench.setup(cfg, "tiny" if a.tiny else "sd15", work / "bench", warmup, steps, pair_batches=pair_batches)
    measured, agreement = bench.measure(b, precision=tested_precision(a.device))
    settings = {"model": "tiny" if a.tiny else "sd15", "warmup_steps": warmup, "timed_steps": steps,
                "timed_pair_batches": pair_batches, "max_accumulation": b.accumulation, "resolution": int(cfg.pairs.resolution),
                "runtime": b.rt.description}
    cost = {"formula": bench.FORMULA, "rows": bench.cost_rows(cfg, measured, bench.paper_costs()), "notes": NOTES}
    return measured, agreement, cost, settings


# ----------------------------------------------------------------------------------- output

def _f(v) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return "—" if v is None else str(v)


def table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[_f(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def report(rec: dict) -> str:
    env, out = rec["environment"], []
    where = env["gpu"] or "CPU"
    out.append(f"GPU check on {where}: torch {env['torch']} (CUDA {env['cuda']}), diffusers {env['diffusers']}, "
               f"git {env['git']}, {env['date']}")
    if rec["mode"]["tiny"]:
        out.append("TINY MODELS: these numbers test the script; they estimate nothing about the full scale.")
    t = rec.get("tests")
    if t:
        out += ["", f"(a) tests on {env['device']}: {'ok' if t['ok'] else 'FAILED'} — {t['summary']}", f"    {t['command']}"]
    if rec.get("precision"):
        out += ["", "(b) mixed precision: fp32 against the tested precision, same weights and batch",
                table(["step", "asked", "resolved", "loss fp32", "loss", "rel. diff", "ok"],
                      [[r["phase"], r["asked"], r["resolved"], r["loss_fp32"], r["loss"], r["rel_diff"], r["ok"]]
                       for r in rec["precision"]])]
    m = rec.get("measurements")
    if m:
        out += ["", f"(c) speed, {rec['settings']['timed_steps']} timed steps after {rec['settings']['warmup_steps']} "
                f"warm-up ({rec['settings']['timed_pair_batches']} batches for pairs)",
                table(["phase", "batch", "precision", "per s", "s/step (mean)", "peak GiB", "finite"],
                      [[v["what"], f"{v['batch']}" + (f" (params {v['params_batch']})" if "params_batch" in v else ""), v["precision"], f"{v['per_s']:.3g} {v['unit']}",
                        sum(v["seconds_per_step"]) / len(v["seconds_per_step"]), v.get("peak_mem_gib"), v["finite"]]
                       if "error" not in v else [v["what"], "—", "—", v["error"], None, None, None] for v in m.values()])]
    if rec.get("cost"):
        out += ["", f"(d) cost of params/instaflow/full.yaml's schedule on {where} ({rec['cost']['formula']})",
                table(["what", "runs", "per s", "GPU-days per run", "all runs", "paper A100-days", "paper per s per A100"],
                      [[r["what"], r.get("runs"), r.get("per_s"), r.get("gpu_days"), r.get("gpu_days_all_runs"),
                        r.get("paper_a100_days"), r.get("paper_per_s_per_a100")] for r in rec["cost"]["rows"]]),
                "The paper's A100-days are params/instaflow/claims.yaml's: the total from the abstract, the stages "
                "from the two model cards, data generation by subtraction.",
                *[f"  - {n}" for n in rec["cost"]["notes"]]]
    for f in rec["failures"]:
        out.append(f"FAILED: {f}")
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in rec.get("part_wall_s", {}).items())
    out.append(f"\n{'all checks passed' if rec['ok'] else 'some checks FAILED'} in {rec['wall_s']:.0f} s ({parts}); "
               f"record: {rec['out']}")
    return "\n".join(out)


def _attempt(rec: dict, part: str, fn):
    """Run one part, timed; an exception fails the check (recorded with its traceback's end), not the script."""
    t0 = time.monotonic()
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 -- a part that crashes is a finding to record
        rec["failures"].append(f"{part}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        rec.setdefault("errors", {})[part] = traceback.format_exc()[-4000:]
        return None
    finally:
        rec.setdefault("part_wall_s", {})[part] = time.monotonic() - t0


def main(argv=None) -> int:
    a = parse(argv)
    import torch

    if a.device == "cuda" and not torch.cuda.is_available():
        why = ("this torch is a CPU build (bash scripts/setup.sh installs the CUDA one where nvidia-smi works)"
               if torch.version.cuda is None else f"torch {torch.__version__} is built for CUDA {torch.version.cuda}")
        print(f"error: no CUDA GPU is visible to torch; {why}. This check needs one. To test the script itself "
              "on a CPU: --device cpu --tiny", file=sys.stderr)
        return 2
    if a.device == "cpu" and not a.tiny:
        print("error: --device cpu needs --tiny (SD 1.5-sized models on a CPU would take hours)", file=sys.stderr)
        return 2
    if a.device == "cuda":  # before cuBLAS starts, as steps.core.device does for every step (deterministic GEMMs)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    out = Path(a.out or repo_root() / "benchmarks" / f"gpu_check_{a.device}{'_tiny' if a.tiny else ''}.json")
    t0 = time.monotonic()
    rec = {"what": "paperzoo GPU check (python -m steps.core.gpu_check)", "argv": sys.argv[1:] if argv is None else list(argv),
           "mode": {"quick": a.quick, "tiny": a.tiny}, "environment": environment(a.device), "failures": [], "out": str(out)}
    rec["tests"] = _attempt(rec, "tests", lambda: run_tests(a))
    if rec["tests"] and not rec["tests"]["ok"]:
        rec["failures"].append(f"tests: {rec['tests']['summary']}")
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        rec["precision"] = _attempt(rec, "precision", lambda: run_precision(a, Path(tmp))) or []
        result = _attempt(rec, "bench", lambda: run_bench(a, Path(tmp)))
    if result:
        measured, agreement, cost, settings = result
        rec["precision"].append(agreement)
        rec.update(measurements=measured, settings=settings, cost=cost)
        rec["failures"] += [f"bench: {k}: {v['error']}" if "error" in v else f"bench: {k} gave non-finite values"
                            for k, v in measured.items() if "error" in v or not v["finite"]]
        rec["failures"] += [f"precision: {k} trained in {v['precision']} but its linear layers computed in "
                            f"{', '.join(v['linear_dtypes'])}" for k, v in measured.items()
                            if v.get("linear_dtypes") and v["linear_dtypes"] != [_DTYPE[v["precision"]]]]
    rec["failures"] += [f"precision: {r['phase']}: " + (r.get("error") or f"resolved {r['resolved']}, rel. diff "
                        f"{r['rel_diff']:.3g}, finite {r['finite']}") for r in rec["precision"] if not r["ok"]]
    rec["ok"] = not rec["failures"]
    rec["wall_s"] = time.monotonic() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, rec)
    print(report(rec))
    return 0 if rec["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
