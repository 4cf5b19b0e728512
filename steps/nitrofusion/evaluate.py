"""Phase `evaluate`: one-step FID (digits-classifier features) of every start × arm against the
real digits (headline) and against the teacher's samples, prompt accuracy, per-class coverage,
bottom-up refinement (1, 2, 4 steps with the same weights), the discriminator-overfitting gap,
and sample grids. Arm `base` is the start itself, not fine-tuned. Every variant of a seed sees
the same noises and captions.

    python -m steps.nitrofusion.evaluate scale=mini io.digits=data/instaflow/digits.npz \
        io.captions=data/instaflow/caption_emb.npz io.caption_table=data/instaflow/captions.parquet \
        io.fid_clf=models/instaflow/fid_clf.pt io.instaflow_models=models/instaflow \
        io.models=models/nitrofusion io.results=results/nitrofusion
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import metrics, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.io import load_parquet, save_npz
from steps.core.progress import Progress, log
from steps.data.digit_captions import consistent
from steps.instaflow.common import CaptionedDigits, flow_path, student_path
from steps.instaflow.fid_features import load_classifier
from steps.nitrofusion.adversarial import diagnostics, load_generators
from steps.nitrofusion.common import adversarial_path, load_start, refine, teacher_reals
from steps.nn import fid as fidlib
from steps.nn import rectified_flow as rf

FID_NAME = "FID (digits-classifier features)"


def draw(data: CaptionedDigits, pool: np.ndarray, n: int, stream: str):
    g = seeding.step_generator(0, stream)
    z = torch.randn(n, data.x_dim, generator=g)
    pick = torch.from_numpy(pool)[torch.randint(len(pool), (n,), generator=g)]
    return z, data.caption_id[pick]


def coverage(pred: np.ndarray) -> float:
    """10 × the share of the rarest predicted class (1 = every digit equally often, 0 = a digit missing)."""
    return float(10.0 * np.bincount(pred, minlength=10).min() / len(pred))


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    paths = need_io(cfg, "digits", "captions", "caption_table", "fid_clf", "instaflow_models", "models", "results")
    digits_path, emb_path, table_path, clf_path, if_models, models_dir, results_dir = paths
    results_dir = Path(results_dir)
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    ev, a = cfg.eval, cfg.adversarial
    data = CaptionedDigits(digits_path, emb_path)
    table = load_parquet(table_path, "caption table")
    clf, split = load_classifier(clf_path)
    seeds = [int(s) for s in cfg.seeds]
    starts = [str(s) for s in a.starts]
    arms = ["base", *[str(x) for x in a.arms]]
    n_gen = int(ev.n_gen)

    def feats(x):
        return clf.features(x).numpy()

    real = feats(data.x)
    real_stats = fidlib.gaussian(real)
    kind = table.set_index("id").kind.loc[data.caption_id.numpy()].to_numpy()
    z, cid = draw(data, np.arange(len(data.x)), n_gen, "eval_all")
    z_ex, cid_ex = draw(data, np.nonzero(kind == "exact")[0], n_gen, "eval_exact")
    c, c_ex = data.cond(cid), data.cond(cid_ex)

    per: dict = {}
    grids: dict = {}
    diag_all: dict = {}
    bar = Progress(len(seeds) * len(starts) * len(arms), "evaluate", cfg.progress.every_s)
    for seed in seeds:
        teacher_p = flow_path(if_models, "rf1", seed)
        teacher = load_start("weak", teacher_p, None, "")
        tx, _ = teacher_reals(teacher, data, n_gen, seed, "eval_teacher", int(ev.teacher_steps), float(cfg.reals.guidance))
        teacher_stats = fidlib.gaussian(feats(tx))
        per.setdefault(("teacher", f"n{ev.teacher_steps}"), []).append(
            fidlib.frechet_distance(*fidlib.gaussian(feats(rf.euler(teacher, z, c, int(ev.teacher_steps), 1.0, data.null))), *real_stats))
        tuned, diag_all[seed] = {}, {}
        for start in starts:
            tuned |= load_generators(adversarial_path(models_dir, start, seed), teacher_p)
            diag_all[seed] |= diagnostics(adversarial_path(models_dir, start, seed))
        for start in starts:
            base = load_start(start, teacher_p, student_path(if_models, "rf2", seed), str(a.student_budget))
            for arm in arms:
                gen = base if arm == "base" else tuned[f"{start}/{arm}"]
                x = rf.one_step(gen, z, c)
                f = feats(x)
                per.setdefault(("one_step", start, arm), []).append(fidlib.frechet_distance(*fidlib.gaussian(f), *real_stats))
                per.setdefault(("vs_teacher", start, arm), []).append(fidlib.frechet_distance(*fidlib.gaussian(f), *teacher_stats))
                per.setdefault(("coverage", start, arm), []).append(coverage(clf(x).argmax(1).numpy()))
                x_ex = rf.one_step(gen, z_ex, c_ex)
                per.setdefault(("prompt", start, arm), []).append(
                    float(consistent(clf(x_ex).argmax(1).numpy(), cid_ex.numpy(), table).mean()))
                if arm in cfg.refine.arms:
                    for name, sched in cfg.refine.schedules.items():
                        xr = refine(gen, z, c, [float(v) for v in sched], seeding.step_generator(seed, f"refine_{name}"))
                        per.setdefault(("refine", start, arm, str(name)), []).append(
                            fidlib.frechet_distance(*fidlib.gaussian(feats(xr)), *real_stats))
                if seed == seeds[0]:
                    grids[f"grid_{start}_{arm}"] = grid(cfg, data, table, gen)
                bar.update(1)
    bar.close()

    def tree(group):
        out: dict = {}
        for key, vals in per.items():
            if key[0] != group:
                continue
            node = out
            for k in key[1:-1]:
                node = node.setdefault(k, {})
            node[key[-1]] = metrics.summary(vals)
        return out

    floor = fidlib.fid(real[split["test"]], real[split["train"]])
    noise = fidlib.fid(feats(torch.randn(n_gen, data.x_dim, generator=seeding.step_generator(0, "noise"))), real)
    fid_values = {"one_step": tree("one_step"), "vs_teacher": tree("vs_teacher"), "refine": tree("refine"),
                  "teacher": tree("teacher"), "reference": {"floor": floor, "noise": noise}}
    common = dict(wall_time_s=time.monotonic() - t0, device=rt.description)
    metrics.write(results_dir / "fid.json", cfg, "fid",
                  f"{FID_NAME}: {n_gen} one-step samples vs the real digits (one_step) and vs {n_gen} teacher "
                  f"samples of {ev.teacher_steps} Euler steps (vs_teacher); refine: bottom-up refinement; "
                  "mean ± std over training seeds",
                  fid_values, extra={"n_gen": n_gen, "feature_extractor": "digits classifier, 64-d features"}, **common)
    metrics.write(results_dir / "prompt_acc.json", cfg, "prompt_acc",
                  "Share of one-step samples for exact captions ('the digit 3') that the FID classifier reads as that digit",
                  tree("prompt"), **common)
    metrics.write(results_dir / "coverage.json", cfg, "coverage",
                  "10 × the share of the rarest digit among one-step samples (1 = uniform, 0 = a digit never drawn)",
                  tree("coverage"), **common)
    metrics.write(results_dir / "d_overfit.json", cfg, "d_overfit",
                  "Discriminator accuracy on its training reals minus on held-out teacher reals (gap), over every head "
                  "of the pool at the end of training; refresh_ok: every refresh changed exactly the heads it drew",
                  overfit(diag_all, starts, arms[1:]), extra={"trace": traces(diag_all)}, **common)
    save_npz(results_dir / "samples.npz", **grids, row_captions=np.array(grid_rows(table)[1]))
    log.info("one-step FID: " + "; ".join(f"{s}: " + ", ".join(f"{k} {v['mean']:.2f}" for k, v in d.items())
                                          for s, d in fid_values["one_step"].items()))
    return fid_values


def overfit(diag: dict, starts, arms) -> dict:
    out: dict = {"gap": {}, "acc_train": {}, "acc_heldout": {}, "refresh_ok": {}, "refresh_events": {}, "d_steps": {}, "g_steps": {}}
    for start in starts:
        for arm in arms:
            runs = [diag[s][f"{start}/{arm}"] for s in sorted(diag)]
            last = [r["gap_trace"][-1] for r in runs]
            out["gap"].setdefault(start, {})[arm] = metrics.summary([p[1] - p[2] for p in last])
            out["acc_train"].setdefault(start, {})[arm] = metrics.summary([p[1] for p in last])
            out["acc_heldout"].setdefault(start, {})[arm] = metrics.summary([p[2] for p in last])
            out["refresh_ok"].setdefault(start, {})[arm] = min(r["refresh_ok"] for r in runs)
            out["refresh_events"].setdefault(start, {})[arm] = runs[0]["refresh_events"]
            out["d_steps"].setdefault(start, {})[arm] = runs[0]["d_steps"]
            out["g_steps"].setdefault(start, {})[arm] = runs[0]["g_steps"]
    return out


def traces(diag: dict) -> dict:
    """{'<start>/<arm>': {seed: [[step, acc_train, acc_heldout], ...]}} for the figures."""
    out: dict = {}
    for seed, runs in diag.items():
        for key, r in runs.items():
            out.setdefault(key, {})[str(seed)] = r["gap_trace"]
    return out


def grid_rows(table) -> tuple[list[int], list[str]]:
    rows = table[table.kind == "exact"].head(10)
    return rows.id.tolist(), rows.text.tolist()


def grid(cfg, data, table, gen) -> np.ndarray:
    """One row per exact caption 'the digit 0..9', grid_per_row samples each, same noises for all."""
    ids, _ = grid_rows(table)
    per_row = int(cfg.eval.grid_per_row)
    cid = torch.tensor(ids).repeat_interleave(per_row)
    z = torch.randn(len(cid), data.x_dim, generator=seeding.step_generator(0, "grid"))
    return rf.one_step(gen, z, data.cond(cid)).numpy().reshape(len(ids), per_row, -1)


if __name__ == "__main__":
    run(main, "nitrofusion", "evaluate")
