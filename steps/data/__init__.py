"""Shared datasets: seeded generators and loaders of packaged (offline) datasets."""
