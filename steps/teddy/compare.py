"""Phase `compare`: the arms side by side at every level — the accuracy–sparsity frontier, the
cost of each ticket — and the numbers the claims check (spec "Claim checks"):

1. at the claim level (compare.claim_k; p_g ≈ 0.6, p_w ≈ 0.9) TEDDY ≥ UGS in accuracy and its
   ticket costs less than a third of UGS's wall time;
2. at every level with p_g ≥ 0.6, TEDDY beats the inverted score and random pruning;
3. TEDDY ≥ TEDDY without KD, averaged over the levels.

    python -m steps.teddy.compare scale=mini io.results=results/teddy io.out=results/teddy/frontier.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.teddy import common


def main(cfg: DictConfig) -> dict:
    results, out = need_io(cfg, "results", "out")
    t0 = time.monotonic()
    sweeps = {arm: metrics.read(Path(results) / f"sweep_{arm}.json")["values"]["levels"] for arm in common.ARMS}
    dense = metrics.read(Path(results) / "dense.json")["values"]
    ks = common.levels(cfg)
    levels = {}
    worst_e = worst_w = 0.0
    for k in ks:
        key = f"k{k}"
        row = {"k": k, "edge_sparsity": common.sparsity(float(cfg.levels.edge_rate), k),
               "weight_sparsity": common.sparsity(float(cfg.levels.weight_rate), k), "arms": {}}
        for arm, lv in sweeps.items():
            a = lv[key]
            row["arms"][arm] = {"test": a["test"]["mean"], "test_std": a["test"]["std"], "wall_s": a["wall_s"]["mean"],
                                "edge_sparsity": a["edge_sparsity"], "weight_sparsity": a["weight_sparsity"],
                                "flops": a.get("flops")}
            worst_e = max(worst_e, abs(a["edge_sparsity"] - a["target_edge_sparsity"]))
            worst_w = max(worst_w, abs(a["weight_sparsity"] - a["target_weight_sparsity"]))
        levels[key] = row
    ck = int(cfg.compare.claim_k)
    if ck not in ks:
        from steps.core.errors import ConfigError

        raise ConfigError(f"teddy compare.claim_k={ck} is not one of levels.ks {ks}")
    at = levels[f"k{ck}"]["arms"]
    high = [k for k in ks if levels[f"k{k}"]["edge_sparsity"] >= float(cfg.compare.high_edge_sparsity)]

    def gap(a: str, b: str, over: list[int]) -> float | None:
        return min(levels[f"k{k}"]["arms"][a]["test"] - levels[f"k{k}"]["arms"][b]["test"] for k in over) if over else None

    mean_over = {arm: float(np.mean([levels[f"k{k}"]["arms"][arm]["test"] for k in ks])) for arm in common.ARMS}
    values = {
        "levels": levels,
        "dense": {"gcn": dense["gcn"]["mean"], "mlp": dense["mlp"]["mean"]},
        "claim1": {"k": ck, "edge_sparsity": levels[f"k{ck}"]["edge_sparsity"], "weight_sparsity": levels[f"k{ck}"]["weight_sparsity"],
                   "teddy": at["teddy"]["test"], "ugs": at["ugs"]["test"], "teddy_minus_ugs": at["teddy"]["test"] - at["ugs"]["test"],
                   "wall_teddy": at["teddy"]["wall_s"], "wall_ugs": at["ugs"]["wall_s"],
                   "wall_ratio_ugs_over_teddy": at["ugs"]["wall_s"] / at["teddy"]["wall_s"]},
        "claim2": {"levels": high, "teddy_minus_inverted_min": gap("teddy", "inverted", high),
                   "teddy_minus_random_min": gap("teddy", "random", high)},
        "claim3": {"mean_over_levels": mean_over, "teddy_minus_no_kd": mean_over["teddy"] - mean_over["teddy_no_kd"]},
        "sparsity_error": {"edge_max": worst_e, "weight_max": worst_w},
    }
    metrics.write(out, cfg, "frontier", "accuracy against sparsity for every arm, and the claims' numbers", values,
                  time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "teddy", "compare")
