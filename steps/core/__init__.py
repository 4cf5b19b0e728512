"""Shared plumbing every paper's steps use: config, io, checkpoints, seeding, device,
progress, metrics, claims and reports. Nothing here imports torch at module import time
unless it needs it, so small steps start fast."""
