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


def image_panels(images: dict, path: Path, title: str, ncol: int = 4, cell: tuple[float, float] = (3.0, 3.3),
                 label=lambda name: name) -> None:
    """One panel per named 2-D image (e.g. a sample mosaic per model), `ncol` to a row, in the
    dict's order, grey on white in [0, 1]; written to `path` (report sample grids)."""
    plt = pyplot()
    names = list(images)
    ncol = max(1, min(ncol, len(names)))
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(cell[0] * ncol, cell[1] * nrow), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        ax.imshow(images[name], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(label(name), fontsize=9 if cell[0] >= 3 else 8)
    fig.suptitle(title, fontsize=8)
    save(fig, path)
