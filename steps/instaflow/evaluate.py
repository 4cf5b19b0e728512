"""Phase `evaluate`: every variant's FID (digits-classifier features), straightness, prompt
accuracy, sampling time and sample grids.

Variants, one step each: rf1 and rf2 (the flows without distillation), rf1_distill_<budget>
(distilling the 1-flow directly, the paper's "SD+Distill") and instaflow_<budget> (2-RF then
distillation); and the flows with several Euler steps (the multi-step teacher). FID is computed
for all captions and per caption kind (exact / partial / vague), per training seed, averaged
over the sampling seeds; every variant sees the same noises and captions.

    python -m steps.instaflow.evaluate scale=mini io.digits=data/instaflow/digits.npz \
        io.captions=data/instaflow/caption_emb.npz io.caption_table=data/instaflow/captions.parquet \
        io.fid_clf=models/instaflow/fid_clf.pt io.models=models/instaflow io.results=results/instaflow
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import checkpoint, metrics, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.io import load_parquet, save_npz
from steps.core.progress import Progress, log
from steps.data.digit_captions import KINDS, consistent
from steps.instaflow.common import CaptionedDigits, flow_path, load_flow, student_path
from steps.instaflow.distill import load_students
from steps.instaflow.fid_features import load_classifier
from steps.nn import fid as fidlib
from steps.nn import rectified_flow as rf

SUBSETS = ("all", *KINDS)
FID_NAME = "FID (digits-classifier features)"


def samplers(models_dir, seed: int, budgets, guidance: float, null) -> tuple[dict, dict]:
    """({one-step variant: sample(z, c) -> x}, {flow: velocity}) for one training seed."""
    flows = {f: load_flow(flow_path(models_dir, f, seed)) for f in ("rf1", "rf2")}
    students = {f: load_students(student_path(models_dir, f, seed)) for f in ("rf1", "rf2")}
    out = {f: (lambda z, c, v=flows[f]: rf.euler(v, z, c, 1, guidance, null)) for f in flows}
    for b in budgets:
        out[f"rf1_distill_{b}"] = lambda z, c, v=students["rf1"][b]: rf.one_step(v, z, c)
        out[f"instaflow_{b}"] = lambda z, c, v=students["rf2"][b]: rf.one_step(v, z, c)
    return out, flows


def training_runs(models_dir, seeds) -> dict:
    """{job: how it trained} (processes, device, precision, effective batch; the checkpoints'
    meta.train, steps.core.checkpoint.training_summary) of every checkpoint evaluated."""
    paths = {}
    for seed in seeds:
        paths[f"teacher_s{seed}"] = flow_path(models_dir, "rf1", seed)
        paths[f"reflow_s{seed}"] = flow_path(models_dir, "rf2", seed)
        for f in ("rf1", "rf2"):
            paths[f"distill_{f}_s{seed}"] = student_path(models_dir, f, seed)
    out = {job: checkpoint.training_summary(checkpoint.training_record(p)) for job, p in paths.items()}
    return {job: s for job, s in out.items() if s}


def draw(data: CaptionedDigits, pool: np.ndarray, n: int, seed: int, stream: str):
    """n noises and the captions of n random images from `pool` (image indices)."""
    g = seeding.step_generator(seed, stream)
    z = torch.randn(n, data.x_dim, generator=g)
    pick = torch.from_numpy(pool)[torch.randint(len(pool), (n,), generator=g)]
    return z, data.caption_id[pick]


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    paths = need_io(cfg, "digits", "captions", "caption_table", "fid_clf", "models", "results")
    digits_path, emb_path, table_path, clf_path, models_dir, results_dir = paths
    results_dir = Path(results_dir)
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    ev = cfg.eval
    data = CaptionedDigits(digits_path, emb_path)
    table = load_parquet(table_path, "caption table")
    clf, split = load_classifier(clf_path)
    budgets = list(cfg.distill.budgets)
    seeds = [int(s) for s in cfg.seeds]
    n_gen, guidance = int(ev.n_gen), float(ev.guidance)

    def feats(x):
        return clf.features(x).numpy()

    real = feats(data.x)
    image_kind = table.set_index("id").kind.loc[data.caption_id.numpy()].to_numpy()
    pools = {"all": np.arange(len(data.x)), **{k: np.nonzero(image_kind == k)[0] for k in KINDS}}
    real_stats = {s: fidlib.gaussian(real[pools[s]]) for s in SUBSETS}

    def fid_of(x, subset):
        return fidlib.frechet_distance(*fidlib.gaussian(feats(x)), *real_stats[subset])

    draws = {(s, ss): draw(data, pools[s], n_gen, ss, f"eval_{s}") for s in SUBSETS for ss in ev.sampling_seeds}
    per_seed: dict = {}  # (group, key...) -> list over training seeds
    acc_per_seed: dict = {}
    straight: dict = {f: [] for f in ("rf1", "rf2")}
    grids: dict = {}
    n_jobs = len(seeds) * (len(SUBSETS) * (2 + 2 * len(budgets)) + 2 * len(ev.multistep))
    bar = Progress(n_jobs, "evaluate", cfg.progress.every_s)
    for seed in seeds:
        sm, flows = samplers(models_dir, seed, budgets, guidance, data.null)
        for variant, sample in sm.items():
            for subset in SUBSETS:
                vals, accs = [], []
                for ss in ev.sampling_seeds:
                    z, cid = draws[(subset, ss)]
                    x = sample(z, data.cond(cid))
                    vals.append(fid_of(x, subset))
                    if subset in ("exact", "partial"):
                        accs.append(consistent(clf(x).argmax(1).numpy(), cid.numpy(), table).mean())
                per_seed.setdefault(("by_caption", subset, variant), []).append(float(np.mean(vals)))
                if accs:
                    acc_per_seed.setdefault((subset, variant), []).append(float(np.mean(accs)))
                bar.update(1)
        for f, v in flows.items():
            for n in ev.multistep:
                vals = [fid_of(rf.euler(v, z, data.cond(cid), int(n), guidance, data.null), "all")
                        for z, cid in (draws[("all", ss)] for ss in ev.sampling_seeds)]
                per_seed.setdefault(("multistep", f, f"n{n}"), []).append(float(np.mean(vals)))
                bar.update(1)
            z, cid = draw(data, pools["all"], int(ev.straightness_n), seed, "straightness")
            s = rf.straightness(v, z, data.cond(cid), int(ev.straightness_steps), guidance, data.null)
            straight[f].append(float(s.mean()))
        if seed == seeds[0]:
            grids = sample_grids(cfg, data, table, sm, flows, guidance)
            timing = sampling_times(cfg, data, sm, flows, guidance)
    bar.close()

    fid_values = {"one_step": {}, "by_caption": {}, "multistep": {}, "reference": {}, "steps": {}}
    for (group, a, b), vals in per_seed.items():
        fid_values[group].setdefault(a, {})[b] = metrics.summary(vals)
    fid_values["one_step"] = fid_values["by_caption"].pop("all")
    fid_values["steps"] = {v: 1 for v in fid_values["one_step"]} | {
        f"{f}_n{n}": int(n) for f in ("rf1", "rf2") for n in ev.multistep
    }
    floor = fidlib.fid(real[split["test"]], real[split["train"]])
    noise = fidlib.fid(feats(torch.randn(n_gen, data.x_dim, generator=seeding.step_generator(0, "noise"))), real)
    fid_values["reference"] = {"floor": floor, "noise": noise}

    common = dict(wall_time_s=time.monotonic() - t0, device=rt.description)
    metrics.write(results_dir / "fid.json", cfg, "fid",
                  f"{FID_NAME}: {n_gen} generated vs the real digits, mean over sampling seeds "
                  f"{list(ev.sampling_seeds)}; mean ± std over training seeds",
                  fid_values, extra={"n_gen": n_gen, "feature_extractor": "digits classifier, 64-d features",
                                     "training": training_runs(models_dir, seeds)}, **common)
    metrics.write(results_dir / "straightness.json", cfg, "straightness",
                  f"S = ∫‖(Z1 − Z0) − v(Z_t, t)‖² dt per dimension along {ev.straightness_steps}-step Euler paths",
                  {f: metrics.summary(v) for f, v in straight.items()}, **common)
    prompt = {}
    for (subset, variant), vals in acc_per_seed.items():
        prompt.setdefault(subset, {})[variant] = metrics.summary(vals)
    metrics.write(results_dir / "prompt_acc.json", cfg, "prompt_acc",
                  "Share of samples whose digit (by the FID classifier) the caption is true of",
                  prompt, **common)
    metrics.write(results_dir / "sampling_time.json", cfg, "sampling_time",
                  f"Milliseconds per image on {rt.description} (batch of {ev.timing_n}), training seed {seeds[0]}",
                  timing, **common)
    save_npz(results_dir / "samples.npz", **grids)
    log.info("one-step FID: " + ", ".join(f"{k} {v['mean']:.2f}" for k, v in fid_values["one_step"].items()))
    return fid_values


def sample_grids(cfg, data, table, sm, flows, guidance) -> dict[str, np.ndarray]:
    """Per variant a grid: one row per exact caption of the first template (digits 0-9) and one
    per vague caption, `grid_per_row` samples each, same noises for every variant."""
    per_row = int(cfg.eval.grid_per_row)
    rows = table[(table.kind == "exact")].head(10).id.tolist() + table[table.kind == "vague"].id.tolist()
    cid = torch.tensor(rows).repeat_interleave(per_row)
    z = torch.randn(len(cid), data.x_dim, generator=seeding.step_generator(0, "grid"))
    c = data.cond(cid)
    out = {f"grid_{name}": sample(z, c).numpy() for name, sample in sm.items()}
    n_max = max(int(n) for n in cfg.eval.multistep)
    for f, v in flows.items():
        out[f"grid_{f}_n{n_max}"] = rf.euler(v, z, c, n_max, guidance, data.null).numpy()
    out = {k: v.reshape(len(rows), per_row, -1) for k, v in out.items()}
    out["row_captions"] = np.array(table.set_index("id").text.loc[rows].tolist())
    return out


def sampling_times(cfg, data, sm, flows, guidance) -> dict:
    """ms per image for each one-step variant and each flow at its most steps."""
    n = int(cfg.eval.timing_n)
    z = torch.randn(n, data.x_dim, generator=seeding.step_generator(0, "timing"))
    c = data.cond(data.caption_id[:1].expand(n))
    n_max = max(int(s) for s in cfg.eval.multistep)
    runs = dict(sm)
    runs |= {f"{f}_n{n_max}": (lambda z, c, v=v: rf.euler(v, z, c, n_max, guidance, data.null)) for f, v in flows.items()}
    out = {}
    for name, sample in runs.items():
        sample(z[:8], c[:8])  # warm-up
        t = time.perf_counter()
        sample(z, c)
        out[name] = 1000.0 * (time.perf_counter() - t) / n
    return out


if __name__ == "__main__":
    run(main, "instaflow", "evaluate")
