"""SlimFlow's report figures: one-step FID per arm (reflow and distillation), FID against Euler
steps for the small 2-flows, parameters against one-step FID beside InstaFlow's larger student,
the annealing schedule, and a sample grid per model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots
from steps.core.io import load_npz
from steps.instaflow.figures import mosaic

REFLOW = ("scratch", "standard", "anneal", "independent", "rf1_small")
DISTILL = ("naive", "fgd")


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()
    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    fid, params = values.get("fid"), values.get("params")
    if fid:
        ref = fid["reference"]
        fig, ax = plt.subplots(figsize=(7, 3.8))
        names = [n for n in (*REFLOW, *DISTILL) if n in fid["one_step"]]
        m = [fid["one_step"][n]["mean"] for n in names]
        s = [fid["one_step"][n]["std"] for n in names]
        colors = ["tab:orange" if n in DISTILL else "tab:green" if n == "anneal" else "tab:blue" for n in names]
        ax.bar(range(len(names)), m, yerr=s, capsize=3, color=colors)
        labels = [f"student\n{n}" if n in DISTILL else f"2-RF\n{n}" if n != "rf1_small" else "1-RF\nsmall" for n in names]
        ax.set_xticks(range(len(names)), labels, fontsize=7)
        for key, ls, lab in (("instaflow_student", "--", "InstaFlow student (large)"), ("teacher_n1", ":", "teacher, 1 step")):
            if key in ref:
                ax.axhline(ref[key], ls=ls, color="k", lw=1, label=f"{lab}: {ref[key]:.1f}")
        ax.set_yscale("log")
        ax.set_ylabel(f"one-step FID ({cfg.scale})")
        ax.set_title("One-step FID of the small models (mean ± std over seeds; lower is better)", fontsize=9)
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "fid_one_step.png")
        out.append(("One-step FID per arm: reflow arms (blue, annealing green) and distillation arms (orange)",
                    "figures/fid_one_step.png"))

        fig, ax = plt.subplots(figsize=(6, 4))
        for name in (n for n in REFLOW if n in fid["multistep"]):
            pts = sorted((int(k[1:]), v) for k, v in fid["multistep"][name].items())
            n, v = zip(*pts, strict=True)
            ax.errorbar(n, [x["mean"] for x in v], yerr=[x["std"] for x in v], marker="o", capsize=3, label=name)
        teacher_multi = [(int(k.split("_n")[1]), v) for k, v in ref.items() if k.startswith("teacher_n")]
        if teacher_multi:
            n, v = zip(*sorted(teacher_multi), strict=True)
            ax.plot(n, v, "k*--", label="teacher (large 1-RF)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Euler steps")
        ax.set_ylabel("FID (digits-classifier features)")
        ax.set_title("Small flows: FID against sampling steps", fontsize=9)
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "fid_vs_steps.png")
        out.append(("FID against Euler steps for every small flow", "figures/fid_vs_steps.png"))

    if fid and params:
        ref = fid["reference"]
        fig, ax = plt.subplots(figsize=(5.5, 4))
        pts = [("SlimFlow student (FGD)", params["student"], fid["one_step"]["fgd"]["mean"], "o"),
               ("small naive student", params["student"], fid["one_step"]["naive"]["mean"], "x"),
               ("InstaFlow student", params["instaflow_student"], ref["instaflow_student"], "s"),
               ("teacher, 1 step", params["teacher"], ref["teacher_n1"], "v")]
        for label, p, f, mk in pts:
            ax.scatter([p], [f], marker=mk, s=60, label=f"{label}: {f:.1f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("one-step FID")
        ax.set_title(f"Size against one-step FID (teacher/student = {params['teacher_over_student']:.1f}×)", fontsize=9)
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "params_vs_fid.png")
        out.append(("Parameters against one-step FID: the small student beside InstaFlow's larger one", "figures/params_vs_fid.png"))

    sched = values.get("schedule")
    if sched and sched.get("steps"):
        fig, ax = plt.subplots(figsize=(5, 2.6))
        ax.plot(sched["steps"], sched["beta"])
        ax.set_xlabel("training step k")
        ax.set_ylabel("β_k")
        ax.set_title(f"Annealing Reflow: noise perturbation β_k (K = {sched['warmup_K']})", fontsize=9)
        plots.save(fig, figdir / "beta_schedule.png")
        out.append(("Annealing Reflow's β schedule as trained", "figures/beta_schedule.png"))

    samples = results_dir / "samples.npz"
    if samples.exists():
        grids = load_npz(samples, "sample grids")
        grids.pop("row_captions")
        order = ["teacher_n50", "teacher_n1", "instaflow_student", *[f"2rf_{n}" for n in REFLOW],
                 *[f"student_{n}" for n in DISTILL]]
        names = [n for n in order if n in grids] + sorted(n for n in grids if n not in order)
        plots.image_panels({n: mosaic(np.asarray(grids[n])) for n in names}, figdir / "samples.png",
                           "Samples (one step unless n<steps>), same noises for every model; rows: 'the digit 0' … 'the digit 9'",
                           ncol=4, cell=(3.0, 3.3))
        out.append(("Samples per model, side by side (rows: the digits 0 … 9)", "figures/samples.png"))
    return out
