"""Inayoshi & Maiolino (arXiv 2409.07805): a non-stellar Balmer break and Balmer absorption from
extremely dense gas around AGNs. Phases: atomic -> solve_levels (chunks) -> synthesize -> report."""
