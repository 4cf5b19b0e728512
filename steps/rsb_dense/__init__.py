"""Replica symmetry breaking in dense neural networks (Albanese, Alemanno, Alessandrelli, Barra,
J. Stat. Phys. 2022, arXiv 2111.12997): the dense (P-body) Hebbian network, its replica-symmetric
theory and zero-temperature Monte Carlo with finite-size extrapolation."""
