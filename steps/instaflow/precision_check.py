"""bf16 autocast in InstaFlow's miniature training phases, run for real: fid_features, teacher,
reflow and distill (their params say `precision: auto`) at smoke scale, shortened, on a device,
once in fp32 and once in the precision under test (`auto`: bf16 on a GPU that has it), from
the same inputs: both reflow runs start from the fp32 teacher, both distill runs from the fp32
2-RF, so each phase's first step sees the same weights and the same batch in both precisions.

Checked per phase: the checkpoint records the precision the step resolved
(steps.core.distributed.precision), every logged loss is finite, and the first step's loss in
the tested precision agrees with fp32's within `rtol` (bf16 keeps 8 bits of mantissa, ≈ 0.4 %
per rounding; 5 % is far above that and far below a broken cast). Part (b) of
`python -m steps.core.gpu_check`; the full-scale phases' precision is checked there on SD 1.5's
UNet (steps.instaflow.sd.bench).
"""

from __future__ import annotations

import math
from pathlib import Path

from steps.core import checkpoint, distributed
from steps.core.cli import load

PHASES = ("fid_features", "teacher", "reflow", "distill")
SECTION = {"fid_features": "fid", "teacher": "teacher", "reflow": "reflow", "distill": "distill"}
SHORT = ["fid.steps=3", "teacher.steps=3", "reflow.steps=3", "distill.budgets={short:2,long:3}", "pairs.n=64",
         "pairs.ode_steps=2", "data.n_images=100"]  # a few steps of each phase: the cast, not the result


def _run(phase: str, args: list[str]) -> None:
    from importlib import import_module

    import_module(f"steps.instaflow.{phase}").main(load("instaflow", phase, args))


def _record(path: Path) -> dict:
    return checkpoint.load(path)["state"]["meta"]["train"]


def run_phases(work: Path, device: str, precision: str, inputs: dict[str, Path] | None = None) -> dict[str, Path]:
    """Run the training phases with every section's precision set to `precision`; outputs under
    work/<precision>. `inputs` names the teacher checkpoints reflow (rf1) and distill (rf2) start
    from; None: the ones this run trains. Returns {phase: checkpoint}."""
    out = work / precision
    d = work / "data"
    common = ["scale=smoke", f"device={device}", "threads=1", *SHORT, *[f"{s}.precision={precision}" for s in SECTION.values()]]
    data_io = [f"io.digits={d / 'digits.npz'}", f"io.captions={d / 'caption_emb.npz'}"]
    if not (d / "digits.npz").exists():
        _run("digits", [*common, f"io.out={d / 'digits.npz'}", f"io.captions={d / 'captions.parquet'}"])
        _run("captions", [*common, f"io.out={d / 'caption_emb.npz'}"])
    ckpt = {p: out / f"{p}.pt" for p in PHASES}
    teachers = inputs or {"rf1": ckpt["teacher"], "rf2": ckpt["reflow"]}
    _run("fid_features", [*common, f"io.digits={d / 'digits.npz'}", f"io.out={ckpt['fid_features']}",
                          f"io.metrics={out / 'fid_features.json'}"])
    _run("teacher", [*common, *data_io, f"io.out={ckpt['teacher']}"])
    _run("reflow", [*common, *data_io, f"io.teacher={teachers['rf1']}", f"io.out={ckpt['reflow']}"])
    _run("distill", [*common, *data_io, f"io.teacher={teachers['rf2']}", f"io.out={ckpt['distill']}"])
    return ckpt


def check(work, device: str, precision: str = "auto", rtol: float = 0.05) -> list[dict]:
    """One row per phase: {phase, precision asked, resolved, recorded, loss_fp32, loss, rel_diff,
    finite, ok}."""
    import torch

    work = Path(work)
    expected = distributed.precision(precision, torch.device(device))
    ref = run_phases(work, device, "fp32")
    test = run_phases(work, device, precision, inputs={"rf1": ref["teacher"], "rf2": ref["reflow"]})
    rows = []
    for phase in PHASES:
        a, b = _record(ref[phase]), _record(test[phase])
        la, lb = a["loss_trace"]["values"], b["loss_trace"]["values"]
        finite = all(math.isfinite(v) for v in la + lb)
        rel = abs(lb[0] - la[0]) / max(abs(la[0]), 1e-12)
        ok = finite and b["precision"] == expected and a["precision"] == "fp32" and rel <= rtol
        rows.append({"phase": f"instaflow.{phase}", "asked": precision, "resolved": expected,
                     "recorded": b["precision"], "loss_fp32": la[0], "loss": lb[0], "rel_diff": rel,
                     "rtol": rtol, "finite": finite, "ok": ok})
    return rows
