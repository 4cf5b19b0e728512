"""OneFlow's report figures: bytes per iteration per placement (measured vs the cost model, by
collective), the DP/TP byte ratio over the (B, H) grid with the planner's choice, the pipeline's
idle fraction and peak in-flight micro-batches over (m, q), one actor timeline, and the training
throughput of our runtime against PyTorch's per placement (medians with their spread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steps.core import metrics, plots
from steps.oneflow.armset import ARMS

KIND_COLOURS = {"all_reduce": "tab:blue", "reduce_scatter": "tab:orange", "all_gather": "tab:green",
                "all_to_all": "tab:red", "p2p": "tab:purple"}


def make(cfg, results_dir: Path, values: dict) -> list[tuple[str, str]]:
    plt = plots.pyplot()

    out: list[tuple[str, str]] = []
    figdir = results_dir / "figures"
    equiv = {k[len("equiv_"):]: v for k, v in values.items() if k.startswith("equiv_")}
    if equiv:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        names = list(equiv)
        bottom = np.zeros(len(names))
        for kind, colour in KIND_COLOURS.items():
            h = np.array([equiv[n]["bytes"]["by_kind"].get(kind, {}).get("bytes_per_iter", 0.0) for n in names]) / 1024
            if h.any():
                ax.bar(names, h, bottom=bottom, color=colour, label=kind.replace("_", "-"))
                bottom += h
        pred = [equiv[n]["bytes"]["predicted_per_iter"] / 1024 for n in names]
        ax.scatter(names, pred, marker="_", s=900, color="black", zorder=3, label="cost model")
        ax.set_ylim(0, 1.12 * max(max(pred), float(bottom.max())))
        ax.set_ylabel("KiB on the wire per iteration (all ranks)")
        ax.set_title(f"Transfers the planner inserted, by placement ({cfg.scale})")
        ax.legend(fontsize=7)
        plots.save(fig, figdir / "bytes_by_placement.png")
        out.append(("Bytes per iteration by placement: measured (bars, by collective) and predicted (black)",
                    "figures/bytes_by_placement.png"))
    grid = values.get("bytes_grid")
    if grid and grid.get("cells"):
        cells = grid["cells"]
        bs = sorted({int(c.split("_")[0][1:]) for c in cells})
        hs = sorted({int(c.split("_")[1][1:]) for c in cells})
        ratio = np.array([[cells[f"b{b}_h{h}"].get("tp_over_dp", np.nan) for h in hs] for b in bs])
        fig, ax = plt.subplots(figsize=(5, 4))
        im = ax.imshow(np.log2(ratio), cmap="coolwarm", origin="lower")
        placements = ("dp", "tp")
        for i, b in enumerate(bs):
            for j, h in enumerate(hs):
                c = cells[f"b{b}_h{h}"]
                mark = "" if c["planner_choice"] == c["measured_best"] else " ✗"
                ax.text(j, i, f"{ratio[i, j]:.2f}\nplan: {placements[int(c['planner_choice'])]}{mark}",
                        ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(hs)), [str(h) for h in hs])
        ax.set_yticks(range(len(bs)), [str(b) for b in bs])
        ax.set_xlabel("hidden H")
        ax.set_ylabel("batch B")
        ax.set_title("TP / DP bytes per iteration (red: DP cheaper)")
        fig.colorbar(im, ax=ax, label="log2 ratio")
        plots.save(fig, figdir / "grid_tp_over_dp.png")
        out.append(("TP/DP bytes over the (B, H) grid and the planner's choice", "figures/grid_tp_over_dp.png"))
    pipe = values.get("pipeline")
    if pipe and pipe.get("idle"):
        keys = list(pipe["idle"])
        ms = sorted({int(k.split("_")[0][1:]) for k in keys})
        qs = sorted({int(k.split("_")[1][1:]) for k in keys})
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
        for q in qs:
            a1.plot(ms, [pipe["idle"][f"m{m}_q{q}"]["mean"] for m in ms], marker="o", label=f"quota {q}")
            a2.plot(ms, [pipe["peak_inflight"][f"m{m}_q{q}"]["max"] for m in ms], marker="o", label=f"quota {q}")
        a1.set_xlabel("micro-batches m")
        a1.set_ylabel("mean idle fraction per stage")
        a1.set_ylim(0, 1)
        a1.legend(fontsize=7)
        a1.set_title("Pipeline idle (wall clock, noisy)")
        a2.set_xlabel("micro-batches m")
        a2.set_ylabel("peak in-flight micro-batches (max over stages)")
        a2.legend(fontsize=7)
        a2.set_title("Register quota bounds the activations held")
        plots.save(fig, figdir / "pipeline_idle_peak.png")
        out.append(("Pipeline: idle fraction and peak in-flight micro-batches over m and q", "figures/pipeline_idle_peak.png"))
        path = results_dir / "pipeline.json"
        extra = metrics.read(path).get("extra", {}) if path.exists() else {}
        tl = extra.get("timeline")
        if tl:
            fig, ax = plt.subplots(figsize=(9, 0.6 + 0.5 * len(tl["events_per_stage"])))
            for s, events in enumerate(tl["events_per_stage"]):
                for kind, mb, t0, t1 in events:
                    ax.barh(s, (t1 - t0) * 1e3, left=t0 * 1e3, color="tab:blue" if kind == "F" else "tab:orange",
                            edgecolor="black", linewidth=0.3)
                    ax.text((t0 + t1) / 2 * 1e3, s, str(mb), ha="center", va="center", fontsize=6)
            ax.set_yticks(range(len(tl["events_per_stage"])), [f"stage {s}" for s in range(len(tl["events_per_stage"]))])
            ax.invert_yaxis()
            ax.set_xlabel("ms from the start of the iteration (blue forward, orange backward; numbers: micro-batch)")
            ax.set_title(f"Actor timeline of the last timed iteration, {tl['setting']}")
            plots.save(fig, figdir / "pipeline_timeline.png")
            out.append((f"Actor timeline ({tl['setting']})", "figures/pipeline_timeline.png"))
    tput = values.get("throughput")
    if tput and tput.get("arms"):
        throughput(plt, cfg, tput, figdir / "throughput.png")
        out.append(("Training throughput per placement, ours against PyTorch's (median, min–max, every repeat), "
                    "and the paired ratios", "figures/throughput.png"))
    return out


def throughput(plt, cfg, tput: dict, path: Path) -> None:
    """Left: samples/s of every arm, grouped by placement (bar: median, whiskers: min–max, dots:
    the repeats). Right: ours / PyTorch per repeat and placement, with 1 (as fast) and 0.9."""
    placements = [p for p in ARMS if p in tput["ratio"]]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 3.8), gridspec_kw={"width_ratios": [2, 1], "wspace": 0.3})
    x, ticks, labels = 0.0, [], []
    for p in placements:
        ours, theirs = ARMS[p]
        for arm in (ours, *theirs):
            s = tput["arms"][arm]
            colour = "tab:blue" if arm == ours else "tab:gray"
            a1.bar(x, s["median"], color=colour, width=0.8)
            a1.errorbar(x, s["median"], yerr=[[s["median"] - s["min"]], [s["max"] - s["median"]]], color="black",
                        capsize=3)
            a1.scatter([x] * len(s["samples_per_s"]), s["samples_per_s"], s=8, color="black", zorder=3)
            ticks.append(x)
            labels.append(arm.replace("torch_pp_", "torch ").replace("_", " "))
            x += 1
        x += 0.6
    a1.set_xticks(ticks, labels, rotation=30, ha="right", fontsize=8)
    a1.set_ylabel("samples / s")
    a1.set_title(f"Training throughput ({cfg.scale}; blue: ours, grey: PyTorch)")
    for i, p in enumerate(placements):
        r = tput["ratio"][p]
        a2.scatter([i] * len(r["per_repeat"]), r["per_repeat"], s=12, color="tab:blue")
        a2.hlines(r["median"], i - 0.3, i + 0.3, color="black")
    a2.axhline(1.0, color="tab:green", linestyle="--", linewidth=1, label="as fast (1)")
    a2.axhline(0.9, color="tab:orange", linestyle=":", linewidth=1, label="on par (0.9)")
    a2.set_xticks(range(len(placements)), placements)
    a2.set_xlim(-0.6, len(placements) - 0.4)
    a2.set_ylim(0, 1.1 * max(1.0, *(max(tput["ratio"][p]["per_repeat"]) for p in placements)))
    a2.set_ylabel("ours / PyTorch (dots: repeats, bar: median)")
    a2.legend(fontsize=7)
    plots.save(fig, path)
