"""Phase `atomic`: the model atom (data/lrd_balmer/atomic.json, sources in atomic_data.py) and its
sanity numbers (results/lrd_balmer/atomic.json): the n=2 edge cross-section, Einstein A against
NIST, LTE n2/n1, tau(Lyα), and the detailed-balance test (radiative rates off -> Saha-Boltzmann).

    python -m steps.lrd_balmer.atomic scale=mini io.out=data/lrd_balmer/atomic.json \
        io.metrics=results/lrd_balmer/atomic.json
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
from omegaconf import DictConfig

from steps.core import metrics
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, remedy
from steps.core.io import read_json, write_json
from steps.core.progress import log
from steps.lrd_balmer import atomic_data
from steps.lrd_balmer import hydrogen as hy

KM = 1e5  # cm per km


def _digest(atom: dict) -> str:
    return hashlib.sha256(json.dumps(atom, sort_keys=True).encode()).hexdigest()


def save_atom(path, atom: dict) -> str:
    """Write the atom with the SHA-256 of its content (checked by load_atom)."""
    digest = _digest(atom)
    write_json(path, {**atom, "sha256": digest})
    return digest


def load_atom(path) -> dict:
    """The atom of save_atom, or an ArtifactError when it is missing, corrupt or altered."""
    data = read_json(path, "model atom")
    stored = data.pop("sha256", None) if isinstance(data, dict) else None
    if stored is None or stored != _digest(data):
        raise ArtifactError(f"model atom {path} fails its content hash (altered or corrupt); {remedy(path)}")
    return data


def sanity(atom: hy.Atom, cfg: DictConfig) -> dict:
    """The spec's hand calculations, computed from the atom."""
    c = cfg.checks
    t = float(c.t_lte)
    a = atom.a
    nist = {f"a{u}{lo}": (a[u - 1, lo - 1] / v - 1.0) for (u, lo), v in atomic_data.A_NIST.items() if u <= atom.n}
    boltz = atom.g[1] / atom.g[0] * np.exp(-(atom.chi[0] - atom.chi[1]) / (hy.K_CGS * t))
    sig2 = float(atom.sigma(1, atom.nu_edge[1]))
    kappa10 = hy.line_kappa(atom, float(c.b_lya_kms) * KM)
    kappa_b = hy.line_kappa(atom, float(c.b_line_kms) * KM)
    q12 = atom.q_exc(1e4)[0, 1]
    # effective collision strength: q_12 = 8.629e-6 Υ exp(-ΔE/kT) / (g_1 sqrt(T))
    ups12 = q12 * atom.g[0] * np.sqrt(1e4) / 8.629e-6 / np.exp(-(atom.chi[0] - atom.chi[1]) / (hy.K_CGS * 1e4))
    db = []
    for lg in c.db_log_nh:
        nh = 10.0 ** float(lg)
        slab = hy.Slab(n_h=nh, t=t, col=1e24, u=1e-2, b=10 * KM)
        res = hy.solve(atom, slab, radiative=False)
        lte, n_p = atom.lte(nh, t, slab.x_metal)
        db.append(max(np.max(np.abs(res["pops"] / lte - 1.0)), abs(res["n_p"] / n_p - 1.0)))
    return {
        "sigma2_threshold": sig2,
        "sigma1_threshold": float(atom.sigma(0, atom.nu_edge[0])),
        "a_vs_nist_rel_err": nist,
        "a_vs_nist_max_rel_err": max(abs(v) for v in nist.values()),
        "lte_n2_n1": boltz,
        "nh_tau_bac1_lte": 1.0 / (sig2 * boltz),
        "tau_lya": kappa10[0, 1] * float(c.col_lya),
        "sigma_ha0_over_sigma2": (kappa_b[1, 2] / sig2) if atom.n >= 3 else None,
        "alpha_1_1e4K": float(atom.alpha_rr(1e4)[0]),
        "case_b_1e4K": hy.case_b(1e4),
        "upsilon_12_1e4K": ups12,
        "detailed_balance_max_rel_err": max(db),
    }


def main(cfg: DictConfig) -> dict:
    out, metrics_path = need_io(cfg, "out", "metrics")
    t0 = time.monotonic()
    data = atomic_data.build(int(cfg.atom.n_max))
    digest = save_atom(out, data)
    atom = hy.Atom(data, n_freq=int(cfg.atom.n_freq), e_max_ev=float(cfg.atom.e_max_ev))
    values = sanity(atom, cfg)
    log.info(f"{atom.n}-level atom, sha256 {digest[:12]}; sigma2 {values['sigma2_threshold']:.4g} cm^2, "
             f"detailed balance {values['detailed_balance_max_rel_err']:.2g}")
    metrics.write(metrics_path, cfg, "atomic", "model-atom sanity numbers (cgs)", values,
                  time.monotonic() - t0, "cpu")
    return values


if __name__ == "__main__":
    run(main, "lrd_balmer", "atomic")
