"""Figures for reports: matplotlib without a display, each PNG written atomically.

    plt = plots.pyplot()            # inside a step's figures code: matplotlib loads only there
    fig, ax = plt.subplots(...)
    plots.save(fig, figdir / "x.png")
"""

from __future__ import annotations

from pathlib import Path

from steps.core.io import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed: CI, SLURM nodes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    """Write `fig` as a PNG (temp file, then rename) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
