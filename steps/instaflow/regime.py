"""InstaFlow's regime study: where, if anywhere, reflow-then-distill starts to beat distilling
the 1-flow directly. The miniature's own phases (digits, captions, fid_features, teacher,
reflow, distill, evaluate: the same code) run per cell of data setting × capacity, each with
the paper's seeds; `params/instaflow` `regime:` gives each axis value as a list of overrides
(workflow/rules/instaflow_regime.smk passes them). This module holds the study's design (`Study`)
and its phase `regime`, which gathers the cells' metrics into results/instaflow_regime/regime.json:

* gap.<data>_<capacity>: one-step FID of direct distillation minus InstaFlow's (2-RF then
  distillation), long budget, per training seed (both arms of a seed descend from the same
  1-RF and see the same noises), mean ± std over seeds; gap_short, gap_vague (vague captions)
  and rel_gap (gap / the direct arm's FID) beside it;
* straightness.<cell>.rf1|rf2, fid50.<cell>.rf1|rf2 (the flows at their most Euler steps),
  one_step.<cell>.<variant>, reference.<cell>.floor|noise, classifier.<data> (FID features'
  held-out accuracy).

    python -m steps.instaflow.regime scale=mini io.results=results/instaflow_regime \
        io.out=results/instaflow_regime/regime.json
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from steps.core.errors import ConfigError

GAP_ARMS = ("rf1_distill", "instaflow")  # direct distillation of the 1-flow, 2-RF then distillation


@dataclass(frozen=True)
class Study:
    """The study's design from the `regime` config section: the axes (each value a list of
    overrides), the cells that run (`grid`), and the overrides every cell shares (`common`)."""

    data: dict
    capacity: dict
    grid_data: tuple
    grid_capacity: tuple
    common: tuple
    report: tuple

    @classmethod
    def from_cfg(cls, section) -> Study:
        data = {str(k): [str(o) for o in v] for k, v in dict(section["data"]).items()}
        capacity = {str(k): [str(o) for o in v] for k, v in dict(section["capacity"]).items()}
        grid = section["grid"]
        for axis, names, known in (("data", grid["data"], data), ("capacity", grid["capacity"], capacity)):
            unknown = [n for n in names if n not in known]
            if unknown or not names:
                raise ConfigError(f"regime.grid.{axis} must name settings of regime.{axis} "
                                  f"({', '.join(known)}); got {list(names)}")
            if len(set(names)) != len(names):
                raise ConfigError(f"regime.grid.{axis} names a setting twice: {list(names)}")
        for name in [*data, *capacity]:
            if not name.isidentifier() or "_" in name:
                raise ConfigError(f"regime setting '{name}' must be letters and digits (cells are <data>_<capacity>)")
        return cls(data, capacity, tuple(map(str, grid["data"])), tuple(map(str, grid["capacity"])),
                   tuple(map(str, section["common"])), tuple(map(str, section["report"])))

    def cells(self) -> list[tuple[str, str]]:
        """(data, capacity) of every cell, data settings in order of complexity."""
        return [(d, c) for d in self.grid_data for c in self.grid_capacity]

    def overrides(self, data: str | None = None, capacity: str | None = None) -> list[str]:
        """The overrides of a job of the study: the shared ones, then its data setting's, then
        its capacity's (a job of one data setting, e.g. fid_features, has no capacity)."""
        return [*self.common, *(self.data[data] if data else ()), *(self.capacity[capacity] if capacity else ())]


def cell(data: str, capacity: str) -> str:
    """A cell's key in regime.json and in the claims: `<data>_<capacity>`."""
    return f"{data}_{capacity}"


def paired(a: dict, b: dict, fn) -> list[float]:
    """fn(a_s, b_s) over the training seeds of two per-seed summaries (same seeds, same order)."""
    if len(a["per_seed"]) != len(b["per_seed"]):
        raise ConfigError("the two arms were evaluated on different seeds")
    return [fn(x, y) for x, y in zip(a["per_seed"], b["per_seed"], strict=True)]


def cell_values(fid: dict, straight: dict) -> dict:
    """The study's values for one cell from its evaluate step's fid and straightness values."""
    from steps.core.metrics import summary

    one = fid["one_step"]
    direct, insta = (one[f"{arm}_long"] for arm in GAP_ARMS)
    n_max = max(fid["multistep"]["rf1"], key=lambda k: int(k[1:]))
    out = {
        "gap": summary(paired(direct, insta, lambda d, i: d - i)),
        "rel_gap": summary(paired(direct, insta, lambda d, i: (d - i) / d)),
        "one_step": one,
        "fid50": {f: fid["multistep"][f][n_max] for f in ("rf1", "rf2")},
        "straightness": {f: straight[f] for f in ("rf1", "rf2")},
        "reference": fid["reference"],
    }
    if "rf1_distill_short" in one and "instaflow_short" in one:
        out["gap_short"] = summary(paired(one["rf1_distill_short"], one["instaflow_short"], lambda d, i: d - i))
    vague = fid["by_caption"].get("vague")
    if vague:
        out["gap_vague"] = summary(paired(vague["rf1_distill_long"], vague["instaflow_long"], lambda d, i: d - i))
    return out


def axes(values: dict) -> tuple[list[str], list[str]]:
    """(data settings in order of complexity, capacities in order) of a regime.json's values."""
    order = values["axes"]
    return (sorted(order["data"], key=order["data"].get), sorted(order["capacity"], key=order["capacity"].get))


def beyond_spread(gap: dict) -> bool:
    """The paper's claim in a cell: InstaFlow ahead by more than the gap's std over seeds."""
    return gap["mean"] > 0 and gap["mean"] > gap["std"]


def where_it_holds(values: dict) -> dict[str, str | None]:
    """{capacity: the easiest data setting from which the claim holds (gap > 0 and > its spread)
    in that setting and every harder one, or None where it does not hold at the hardest}."""
    data, caps = axes(values)
    out: dict[str, str | None] = {}
    for c in caps:
        start = None
        for d in reversed(data):
            gap = values["gap"].get(cell(d, c))
            if gap is None or not beyond_spread(gap):
                break
            start = d
        out[c] = start
    return out


def main(cfg) -> dict:
    from steps.core import metrics
    from steps.core.cli import need_io

    results, out = need_io(cfg, "results", "out")
    t0 = time.monotonic()
    study = Study.from_cfg(cfg.regime)
    results = Path(results)
    values: dict = {"axes": {"data": {d: i for i, d in enumerate(study.grid_data)},
                             "capacity": {c: i for i, c in enumerate(study.grid_capacity)}},
                    "classifier": {}}
    for d in study.grid_data:
        values["classifier"][d] = metrics.read(results / d / "fid_features.json")["values"]["test_accuracy"]
    for d, c in study.cells():
        fid = metrics.read(results / d / c / "fid.json")["values"]
        straight = metrics.read(results / d / c / "straightness.json")["values"]
        for key, v in cell_values(fid, straight).items():
            values.setdefault(key, {})[cell(d, c)] = v
    metrics.write(out, cfg, "regime",
                  "Regime study: one-step FID gap (direct distillation − InstaFlow, long budget) per cell of "
                  "data setting × capacity, mean ± std over training seeds; straightness and the flows' "
                  "most-steps FID per cell", values, time.monotonic() - t0, "cpu", accounting=["axes"])
    return values


if __name__ == "__main__":
    from steps.core.cli import run

    run(main, "instaflow", "regime")
