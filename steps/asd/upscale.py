"""Phase `upscale`: stage 2, enlarge the test canvases with the super-resolution flow run tile by
tile (spec "Mini reproduction", the paper's §3.2 FSTD), one process for every mode so that wall
times compare under identical batching:

* `non_overlap`: a fixed grid of 16×16 tiles (fast, seams at tile borders);
* `overlap`: tiles every 8 px, Gaussian-weighted average (MultiDiffusion / Mixture-of-Diffusers);
* `fstd`: Fast Seamless Tiled Diffusion, the non-overlapping grid shifted by a random offset per
  step, reset every 4 steps, uncovered pixels from the previous step's prediction (implicit overlap);
* `whole`: the model on the whole canvas (the reference; possible here because the net is fully
  convolutional, not at 8K in the paper).

Metrics per mode: seam score (mean |∇| across the fixed tile grid's borders over mean |∇|
elsewhere, divided by the same ratio on the ground truth: 1 = no seams), PSNR against the HR
ground truth, tile evaluations per canvas and wall time (median of `timing_repeats`).
The tile evaluations are counted on the model (steps.nn.call_count: the batch rows its forward
calls evaluated, per canvas), not computed from the tile grid; they still follow from the
config (FSTD and non-overlapping tiles both evaluate ceil(H/tile)·ceil(W/tile) tiles per step),
so the step declares them accounting: the measured cost is the wall time.

    python -m steps.asd.upscale scale=mini io.sr=data/asd/sr_pairs.npz io.model=models/asd/sr.pt \
        io.out=results/asd/fstd.json io.samples=results/asd/upscaled.npz
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from omegaconf import DictConfig

from steps.asd import common
from steps.core import metrics, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.io import load_npz, save_npz
from steps.core.progress import Progress, log
from steps.nn import tiled_flow
from steps.nn.call_count import CallCounter

MODES = ("non_overlap", "overlap", "fstd", "whole")
GRID_N = 6  # canvases kept for the figures
# Values that follow from the config whatever the model does (tile grid × steps × batching):
# shown under "Accounting" in the report, never a finding.
ACCOUNTING = ["tile", *(f"{m}.{k}" for m in MODES for k in ("calls", "forwards", "tile_px_ratio"))]


def seam_ratio(x: np.ndarray, tile: int) -> float:
    """Mean |∇| across the borders of the fixed tile grid over mean |∇| everywhere else
    (horizontal and vertical neighbour differences of (N, C, H, W) images)."""
    dx = np.abs(np.diff(x, axis=-1))
    dy = np.abs(np.diff(x, axis=-2))
    bx = np.zeros(dx.shape[-1], bool)
    bx[tile - 1::tile] = True
    by = np.zeros(dy.shape[-2], bool)
    by[tile - 1::tile] = True
    on = np.concatenate([dx[..., bx].ravel(), dy[..., by, :].ravel()])
    off = np.concatenate([dx[..., ~bx].ravel(), dy[..., ~by, :].ravel()])
    return float(on.mean() / max(off.mean(), 1e-12))


def upscale(model, cond: torch.Tensor, mode: str, cfg: DictConfig) -> tuple[torch.Tensor, dict]:
    u = cfg.upscale
    g = seeding.step_generator(int(u.seed), "upscale_noise", 0)
    z = torch.randn(cond.shape, generator=g)  # the same noise for every mode
    offsets = seeding.step_generator(int(u.seed), "fstd_offsets", 0)
    outs, info = [], {}
    bs = int(u.batch)
    with CallCounter(model) as counted:
        for i in range(0, len(z), bs):
            x, info = tiled_flow.sample(model, z[i:i + bs], cond[i:i + bs], int(u.euler_steps), mode, int(u.tile),
                                        stride=int(u.stride), max_offset=int(u.max_offset),
                                        reset_every=int(u.reset_every), weighting=str(u.weighting), generator=offsets)
            outs.append(x)
    # the model evaluations that ran: rows (tiles × canvases) per canvas, and forward calls
    return torch.cat(outs), {**info, "calls": counted.rows / len(z), "forwards": counted.forwards}


def main(cfg: DictConfig) -> dict:
    sr_path, model_path, out, samples_out = need_io(cfg, "sr", "model", "out", "samples")
    t0 = time.monotonic()
    rt = runtime.start(cfg, int(cfg.upscale.seed))
    d = load_npz(sr_path, "SR scenes")
    f, tile = int(d["factor"]), int(cfg.upscale.tile)
    hr = d["hr_test"]
    cond = common.upsample(torch.from_numpy(d["lr_test"]), f)
    model, _ = common.load(model_path, "SR flow")
    gt_ratio = seam_ratio(hr, tile)
    values: dict = {"tile": tile, "gt": {"seam_ratio_raw": gt_ratio},
                    "lr_nearest": {"seam": seam_ratio(cond.numpy(), tile) / gt_ratio, "psnr": common.psnr(cond.numpy(), hr)}}
    grids = {"hr": hr[:GRID_N, 0], "lr": d["lr_test"][:GRID_N, 0]}
    reps = int(cfg.upscale.timing_repeats)
    prog = Progress(len(MODES) * reps, "upscale", cfg.progress.every_s)
    walls = {m: [] for m in MODES}
    results = {}
    for r in range(reps):  # modes interleaved per repeat, so machine load hits them alike
        for mode in MODES:
            s = time.perf_counter()
            x, info = upscale(model, cond, mode, cfg)
            walls[mode].append(time.perf_counter() - s)
            if r == 0:
                results[mode] = (x.numpy(), info)
            else:  # deterministic: every repeat computes the same canvases
                assert np.array_equal(results[mode][0], x.numpy()), f"{mode}: repeats differ"
            prog.update(1, mode=mode)
    prog.close()
    h, w = hr.shape[-2:]
    for mode in MODES:
        x, info = results[mode]
        values[mode] = {
            "seam": seam_ratio(x, tile) / gt_ratio,
            "psnr": common.psnr(x, hr),
            "calls": info["calls"],  # model evaluations per canvas over all steps, as counted on the model
            "forwards": int(info["forwards"]),  # forward calls over all canvases (batches of `upscale.batch`)
            "tile_px_ratio": float(info["calls"] * (h * w if mode == "whole" else tile * tile) / (h * w * int(cfg.upscale.euler_steps))),
            "wall_s": float(statistics.median(walls[mode])),
        }
        grids[f"up_{mode}"] = x[:GRID_N, 0]
        log.info(f"{mode}: seam {values[mode]['seam']:.3f}, PSNR {values[mode]['psnr']:.2f} dB, "
                 f"{values[mode]['calls']} calls/canvas, {values[mode]['wall_s']:.2f} s")
    values["speedup_overlap_over_fstd"] = values["overlap"]["wall_s"] / values["fstd"]["wall_s"]
    save_npz(samples_out, **grids)
    metrics.write(out, cfg, "fstd",
                  "Tiled super-resolution of the test canvases: seam score, PSNR, tile calls and wall time per tiling mode",
                  values, time.monotonic() - t0, rt.description, accounting=ACCOUNTING,
                  extra={"n_canvases": int(len(hr)), "canvas": [int(h), int(w)], "tile": tile,
                         "euler_steps": int(cfg.upscale.euler_steps), "timing_repeats": reps,
                         "fstd_offsets_first_batch": [list(o) for o in results["fstd"][1]["offsets"]]})
    return values


if __name__ == "__main__":
    run(main, "asd", "upscale")
