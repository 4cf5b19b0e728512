"""Device, threads and progress reporting."""

from __future__ import annotations

import logging

import torch

from steps.core import device, progress


def test_cpu_device_and_threads_follow_the_allotment(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    dev, desc = device.setup("cpu", 0)
    assert dev.type == "cpu" and torch.get_num_threads() == 1 and "1 threads" in desc
    dev, desc = device.setup("auto", 2)
    assert torch.get_num_threads() == 2
    if not torch.cuda.is_available():
        assert dev.type == "cpu"


def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    import pytest

    from steps.core.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        device.setup("cuda", 1)


def test_progress_logs_periodic_lines_when_not_a_terminal(caplog, monkeypatch):
    progress.setup_logging()
    progress.log.propagate = True
    clock = iter(range(0, 1000, 4))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="paperzoo"):
        p = progress.Progress(10, "train", every_s=10, tty=False)
        for _ in range(10):
            p.update(1, loss=0.5)
        p.close()
    progress.log.propagate = False
    lines = [r.getMessage() for r in caplog.records]
    assert 3 <= len(lines) <= 6, lines
    assert lines[-1].startswith("train: 10/10 (100%)") and "loss=0.5" in lines[-1] and "eta" in lines[-1]


def test_progress_uses_a_bar_on_a_terminal():
    p = progress.Progress(5, "x", tty=True)
    assert p.bar is not None
    p.update(5)
    p.close()
