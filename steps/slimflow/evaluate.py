"""Phase `evaluate`: one-step FID (digits-classifier features) of every small 2-flow and every
small student, side by side with the large teacher and InstaFlow's larger one-step student;
parameter counts; straightness; the annealing schedule as trained; sample grids.

Every model sees the same noises and captions (`eval.sampling_seeds`); per training seed the FID
is the mean over sampling seeds, then mean ± std over training seeds.

    python -m steps.slimflow.evaluate scale=mini io.digits=data/instaflow/digits.npz \
        io.captions=data/instaflow/caption_emb.npz io.caption_table=data/instaflow/captions.parquet \
        io.fid_clf=models/instaflow/fid_clf.pt io.teacher=models/instaflow/rf1_s0.pt \
        io.instaflow_student=models/instaflow/distill_rf2_s0.pt io.models=models/slimflow io.results=results/slimflow
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
from steps.instaflow.common import CaptionedDigits, load_flow
from steps.instaflow.distill import load_students
from steps.instaflow.fid_features import load_classifier
from steps.nn import fid as fidlib
from steps.nn import rectified_flow as rf
from steps.nn.velocity import n_params
from steps.slimflow.common import DISTILL_ARMS, REFLOW_ARMS, flow_path, load_model, student_path

FID_NAME = "FID (digits-classifier features)"
# params.json: parameter counts and their ratio follow from the architectures' configs, whatever
# training does: declared accounting (shown, never a finding; steps.core.metrics.write).
ACCOUNTING = ("teacher", "student", "instaflow_student", "teacher_over_student")


def draw(data: CaptionedDigits, n: int, seed: int, stream: str):
    """n noises and the captions of n random images (the same for every model)."""
    g = seeding.step_generator(seed, stream)
    z = torch.randn(n, data.x_dim, generator=g)
    return z, data.caption_id[torch.randint(len(data.x), (n,), generator=g)]


def small_models(models_dir, seed: int) -> tuple[dict, dict]:
    """({2-flow name: velocity}, {student arm: velocity}) of one training seed. The standard
    arm's small 1-flow (its EMA when it switched to reflow) is the flow `rf1_small`."""
    flows = {arm: load_model(flow_path(models_dir, arm, seed)) for arm in REFLOW_ARMS}
    flows["rf1_small"] = load_model(flow_path(models_dir, "standard", seed), snapshot="rf1_small")
    students = {arm: load_model(student_path(models_dir, arm, seed)) for arm in DISTILL_ARMS}
    return flows, students


def beta_schedule(models_dir, seed: int, warmup: int) -> dict:
    """The β the annealing arm trained with, read back from its checkpoint."""
    meta = checkpoint.load(flow_path(models_dir, "anneal", seed))["state"]["meta"]
    trace = [(int(s), b) for s, b in meta["beta_trace"]]
    after = [b for s, b in trace if s >= warmup]
    return {"at_step_0": trace[0][1], "max_after_warmup": max(after) if after else None,
            "warmup_K": warmup, "steps": [s for s, _ in trace], "beta": [b for _, b in trace]}


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    paths = need_io(cfg, "digits", "captions", "caption_table", "fid_clf", "teacher", "instaflow_student", "models", "results")
    digits_path, emb_path, table_path, clf_path, teacher_path, if_student_path, models_dir, results_dir = paths
    results_dir = Path(results_dir)
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    ev = cfg.eval
    data = CaptionedDigits(digits_path, emb_path)
    table = load_parquet(table_path, "caption table")
    clf, split = load_classifier(clf_path)
    seeds = [int(s) for s in cfg.seeds]
    n_gen = int(ev.n_gen)
    real = clf.features(data.x).numpy()
    real_stats = fidlib.gaussian(real)
    draws = [draw(data, n_gen, ss, "eval") for ss in ev.sampling_seeds]

    def fid_of(sample) -> float:
        """Mean FID over the sampling seeds of sample(z, c) -> x."""
        vals = [fidlib.frechet_distance(*fidlib.gaussian(clf.features(sample(z, data.cond(cid))).numpy()), *real_stats)
                for z, cid in draws]
        return float(np.mean(vals))

    def euler(v, n):
        return lambda z, c: rf.euler(v, z, c, int(n))

    def one(v):
        return lambda z, c: rf.one_step(v, z, c)

    teacher = load_flow(teacher_path, "teacher (1-RF) checkpoint")
    if_student = load_students(if_student_path)[str(ev.instaflow_budget)]
    multistep = [int(n) for n in ev.multistep]
    one_step: dict = {}
    multi: dict = {}
    straight: dict = {}
    grids: dict = {}
    bar = Progress(len(seeds) * (len(REFLOW_ARMS) + 1 + len(DISTILL_ARMS)), "evaluate", cfg.progress.every_s)
    for seed in seeds:
        flows, students = small_models(models_dir, seed)
        for name, v in flows.items():
            one_step.setdefault(name, []).append(fid_of(euler(v, 1)))
            for n in multistep:
                multi.setdefault(name, {}).setdefault(f"n{n}", []).append(fid_of(euler(v, n)))
            z, cid = draw(data, int(ev.straightness_n), seed, "straightness")
            straight.setdefault(name, []).append(float(rf.straightness(v, z, data.cond(cid), int(ev.straightness_steps)).mean()))
            bar.update(1)
        for arm, v in students.items():
            one_step.setdefault(arm, []).append(fid_of(one(v)))
            bar.update(1)
        if seed == seeds[0]:
            grids = sample_grids(cfg, data, table, flows, students, teacher, if_student)
            schedule = beta_schedule(models_dir, seed, int(cfg.reflow.warmup_K))
            student_params = n_params(students["fgd"])
    bar.close()

    z, cid = draw(data, int(ev.straightness_n), seeds[0], "straightness")
    reference = {
        "teacher_n1": fid_of(euler(teacher, 1)),
        f"teacher_n{max(multistep)}": fid_of(euler(teacher, max(multistep))),
        "instaflow_student": fid_of(one(if_student)),
        "floor": fidlib.fid(real[split["test"]], real[split["train"]]),
        "noise": fidlib.fid(clf.features(torch.randn(n_gen, data.x_dim, generator=seeding.step_generator(0, "noise"))).numpy(), real),
    }
    teacher_straight = float(rf.straightness(teacher, z, data.cond(cid), int(ev.straightness_steps)).mean())
    fid_values = {"one_step": {k: metrics.summary(v) for k, v in one_step.items()},
                  "multistep": {k: {n: metrics.summary(v) for n, v in d.items()} for k, d in multi.items()},
                  "reference": reference}
    params = {"teacher": n_params(teacher), "student": student_params, "instaflow_student": n_params(if_student)}
    params["teacher_over_student"] = params["teacher"] / params["student"]
    common = dict(wall_time_s=time.monotonic() - t0, device=rt.description)
    metrics.write(results_dir / "fid.json", cfg, "fid",
                  f"{FID_NAME}: {n_gen} generated vs the real digits, mean over sampling seeds {list(ev.sampling_seeds)}; "
                  "mean ± std over training seeds (reference: InstaFlow's teacher and student, its seed "
                  f"{int(cfg.teacher.seed)})", fid_values, extra={"n_gen": n_gen}, **common)
    metrics.write(results_dir / "params.json", cfg, "params",
                  "Parameters of the large teacher (InstaFlow's 1-RF), the small SlimFlow student and InstaFlow's student",
                  params, accounting=ACCOUNTING, **common)
    metrics.write(results_dir / "straightness.json", cfg, "straightness",
                  f"S = ∫‖(Z1 − Z0) − v(Z_t, t)‖² dt per dimension along {ev.straightness_steps}-step Euler paths",
                  {**{k: metrics.summary(v) for k, v in straight.items()}, "teacher": teacher_straight}, **common)
    metrics.write(results_dir / "schedule.json", cfg, "schedule",
                  "Annealing Reflow's β_k as trained (training seed 0): 1 at step 0, 0 from step K on", schedule, **common)
    save_npz(results_dir / "samples.npz", **grids)
    log.info("one-step FID: " + ", ".join(f"{k} {v['mean']:.2f}" for k, v in fid_values["one_step"].items())
             + f"; InstaFlow student {reference['instaflow_student']:.2f}")
    return fid_values


def sample_grids(cfg, data, table, flows, students, teacher, if_student) -> dict[str, np.ndarray]:
    """Per model a grid, one row per caption "the digit 0" … "the digit 9", `grid_per_row`
    samples each, the same noises for every model (one step unless the name says n<steps>)."""
    per_row = int(cfg.eval.grid_per_row)
    rows = table[table.kind == "exact"].head(10).id.tolist()
    cid = torch.tensor(rows).repeat_interleave(per_row)
    z = torch.randn(len(cid), data.x_dim, generator=seeding.step_generator(0, "grid"))
    c = data.cond(cid)
    n_max = max(int(n) for n in cfg.eval.multistep)
    out = {f"teacher_n{n_max}": rf.euler(teacher, z, c, n_max), "teacher_n1": rf.euler(teacher, z, c, 1),
           "instaflow_student": rf.one_step(if_student, z, c)}
    out |= {f"2rf_{name}": rf.euler(v, z, c, 1) for name, v in flows.items()}
    out |= {f"student_{arm}": rf.one_step(v, z, c) for arm, v in students.items()}
    out = {k: v.numpy().reshape(len(rows), per_row, -1) for k, v in out.items()}
    out["row_captions"] = np.array(table.set_index("id").text.loc[rows].tolist())
    return out


if __name__ == "__main__":
    run(main, "slimflow", "evaluate")
