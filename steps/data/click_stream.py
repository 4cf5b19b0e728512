"""A seeded, drifting click stream: the synthetic stand-in for a recommender's event log.

Events arrive in time order over `days` days (time t in days, day d = 1 + floor(t)). Users
follow a Zipf(a) law over `n_users` IDs; items are born throughout the stream (some the day
before it starts), each with a popularity burst that decays with age; `n_ctx` context
features have small vocabularies. The click probability is

    p(click) = sigmoid(b0 + u·v + b_item(t) + Σ_j c_j[ctx_j]),   u, v ~ N(0, σ² I_latent)
    b_item(t) = q_i + hot · exp(-age / hot_tau)                  (concept drift with item age)

with b0 set so that the mean CTR is `ctr`. IDs are random 40-bit integers (hashing them
is meaningful; nothing can be indexed by them directly).

    df = generate(cfg.stream, seed=1234)   # columns t, day, user, item, ctx0.., p, click
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas and scipy are imported by generate(): random_ids() needs neither
    import pandas as pd


def random_ids(rng: np.random.Generator, n: int, bits: int = 40) -> np.ndarray:
    """n distinct random non-negative IDs below 2^bits, in random order."""
    ids = np.unique(rng.integers(0, 2**bits, size=int(n * 1.05) + 16))
    while len(ids) < n:
        ids = np.unique(np.concatenate([ids, rng.integers(0, 2**bits, size=n)]))
    return rng.permutation(ids)[:n]


def zipf_probs(n: int, a: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -float(a)
    return w / w.sum()


def generate(c, seed: int) -> pd.DataFrame:
    """The stream for config `c` (days, events_per_day, n_users, zipf_a, n_items, ...)."""
    import pandas as pd
    from scipy.optimize import brentq
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    days, per_day = int(c.days), int(c.events_per_day)
    n = days * per_day
    lat, sig = int(c.latent_dim), float(c.latent_std)

    users = random_ids(rng, int(c.n_users))
    u_vec = rng.normal(0.0, sig, size=(len(users), lat))
    u_idx = rng.choice(len(users), size=n, p=zipf_probs(len(users), c.zipf_a))

    n_items = int(c.n_items)
    items = random_ids(rng, n_items)
    born = np.sort(rng.uniform(-float(c.prebirth_days), days, size=n_items))
    weight = rng.lognormal(0.0, float(c.pop_sigma), size=n_items)
    quality = rng.normal(0.0, float(c.item_bias_std), size=n_items)
    v_vec = rng.normal(0.0, sig, size=(n_items, lat))

    # Event times: `bins` per day; an item can be shown in a bin once born before it starts,
    # with probability ∝ weight · exp(-age / pop_tau) (the popularity burst, then decay).
    bins = int(c.bins_per_day)
    width = 1.0 / bins
    per_bin = np.full(days * bins, per_day // bins)
    per_bin[: per_day % bins] += 1  # events of a day spread evenly over its bins
    t = np.empty(n)
    i_idx = np.empty(n, dtype=np.int64)
    pos = 0
    horizon = float(c.pop_tau) * 12.0  # older items have negligible popularity
    for b, m in enumerate(np.tile(per_bin[:bins], days)):
        start = b * width
        lo, hi = np.searchsorted(born, [start - horizon, start])
        age = start + width / 2 - born[lo:hi]
        w = weight[lo:hi] * np.exp(-age / float(c.pop_tau))
        i_idx[pos:pos + m] = lo + rng.choice(hi - lo, size=m, p=w / w.sum())
        t[pos:pos + m] = np.sort(rng.uniform(start, start + width, size=m))
        pos += m

    ctx_vocab = [int(v) for v in c.ctx_vocab]
    ctx = [rng.integers(0, v, size=n) for v in ctx_vocab]
    ctx_eff = [rng.normal(0.0, float(c.ctx_effect_std), size=v) for v in ctx_vocab]
    age = t - born[i_idx]
    logit = (np.einsum("ij,ij->i", u_vec[u_idx], v_vec[i_idx]) + quality[i_idx]
             + float(c.hot) * np.exp(-age / float(c.hot_tau)) + sum(e[x] for e, x in zip(ctx_eff, ctx, strict=True)))
    b0 = brentq(lambda b: expit(logit + b).mean() - float(c.ctr), -20.0, 20.0)
    p = expit(logit + b0)
    click = (rng.random(n) < p).astype(np.int8)

    df = pd.DataFrame({"t": t, "day": (np.floor(t).astype(np.int16) + 1), "user": users[u_idx], "item": items[i_idx]})
    for j, x in enumerate(ctx):
        # Context values get IDs of their own (feature j, value x), distinct across features.
        df[f"ctx{j}"] = (np.int64(j + 1) << np.int64(32)) + x.astype(np.int64)
    df["p"] = p.astype(np.float32)
    df["click"] = click
    return df
