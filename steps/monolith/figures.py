"""Monolith's report figures: AUC against table memory (E1, E2), live rows over time (E2),
serving AUC by day per sync interval (E3), AUC around a PS failure (E4), and MovieLens AUC
and hash-collision rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import plots


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()

    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"

    def done(fig, name, caption):
        plots.save(fig, figdir / name)
        out.append((caption, f"figures/{name}"))

    e1, e2 = values.get("collisionless"), values.get("memory")
    if e1 or e2:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for vals, marker in ((e1, "o"), (e2, "s")):
            if not vals:
                continue
            mem = vals.get("alloc_bytes", vals["bytes"])   # allocated where recorded (older files: live)
            for arm, a in vals["auc"].items():
                mb = mem[arm]["mean"] / 2**20
                if mb > 2**30:  # a virtual table (M >> #IDs²): its nominal memory is off the chart
                    continue
                ax.errorbar([mb], [a["mean"]], yerr=[a["std"]], marker=marker, capsize=3, ls="none",
                            color="C0" if "cuckoo" in arm or arm.startswith("f") else "C3")
                ax.annotate(arm, (mb, a["mean"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        bayes = f"; Bayes AUC {e1['bayes_auc']:.3f}" if e1 and e1.get("bayes_auc") else ""
        ax.set_xscale("log")
        ax.set_xlabel("table memory allocated, MB (every array at its capacity: embeddings, Adagrad state, index, filter)")
        ax.set_ylabel("last-day AUC")
        ax.set_title(f"AUC against memory ({cfg.scale}; blue: collisionless, red: hash trick{bayes})", fontsize=9)
        done(fig, "auc_vs_memory.png", "AUC against table memory (E1, E2)")

    if e2 and e2.get("rows_by_day"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for arm, rows in e2["rows_by_day"].items():
            ax.plot(np.arange(1, len(rows) + 1), rows, marker=".", label=arm)
        ax.set_xlabel("training day")
        ax.set_ylabel("live rows (all features)")
        ax.set_title("E2: live embedding rows under frequency filter f and expiry T (seed 0)")
        ax.legend(fontsize=7, ncol=2)
        done(fig, "rows_by_day.png", "Live rows over time (E2)")

    e3 = values.get("sync")
    if e3:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for arm, days in e3["auc_by_day"].items():
            d = sorted(days, key=lambda k: int(k[1:]))
            ax.errorbar([int(k[1:]) for k in d], [days[k]["mean"] for k in d], yerr=[days[k]["std"] for k in d],
                        marker="o", capsize=2, label=f"{arm} (all: {e3['auc'][arm]['mean']:.4f})")
        ax.set_xlabel("day (streamed, progressive validation)")
        ax.set_ylabel("serving AUC")
        ax.set_title("E3: serving AUC by sparse-sync interval (dense: daily)")
        ax.legend(fontsize=7)
        done(fig, "sync_by_day.png", "Serving AUC per day by sync interval (E3)")

    e4 = values.get("failover")
    if e4:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        step = float(e4.get("curve_step_days", 0.25))
        start = float(e4.get("curve_start", 0.0))
        fail = e4.get("fail_at")
        if fail is not None:
            ax.axvline(fail, color="k", ls=":", lw=1, label="failure")
        for arm, curve in e4["curve"].items():
            xs = start + step * (np.arange(len(curve)) + 0.5)
            ys = [np.nan if v is None else v for v in curve]
            ax.plot(xs, ys, marker=".", label=f"{arm} ({e4['auc'][arm]['mean']:.4f})")
        ax.set_xlabel("time (days since stream start)")
        ax.set_ylabel(f"serving AUC per {step:g} day")
        ax.set_title("E4: restore from snapshots of different ages (mean over seeds)")
        ax.legend(fontsize=7)
        done(fig, "failover.png", "Serving AUC around the PS failure (E4)")

    ml = values.get("movielens")
    if ml:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
        arms = list(ml["auc"])
        a1.bar(arms, [ml["auc"][a]["mean"] for a in arms], yerr=[ml["auc"][a]["std"] for a in arms], capsize=3,
               color=["C0" if a.startswith("cuckoo") else "C3" for a in arms])
        lo = min(ml["auc"][a]["mean"] for a in arms)
        a1.set_ylim(lo - 0.02, None)
        a1.set_ylabel("progressive AUC")
        a1.set_title("MovieLens in time order")
        rows = sorted(ml["collision_rate"], key=lambda k: int(k[1:]))
        for f in ("user", "movie"):
            a2.plot([int(k[1:]) for k in rows], [ml["collision_rate"][k][f] for k in rows], marker="o", label=f"{f}s")
        a2.set_xscale("log", base=2)
        a2.set_xlabel("hash-trick table rows")
        a2.set_ylabel("share of IDs sharing a row")
        a2.set_title("MovieLens hash collisions")
        a2.legend(fontsize=7)
        done(fig, "movielens.png", "MovieLens: AUC by table type, hash collision rates")
    return out
