"""ℓ∞-guarantee sketch-and-solve regression (Song, Ye, Yin, Zhang, ICML 2023, arXiv 2302.00248).

Phases: fetch (full only) → instances → sketch_solve (per instance and trial shard) →
aggregate; timing and sanity beside them; the generic report at the end."""
