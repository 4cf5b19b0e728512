"""Shared compression parts: the Fashion-MNIST loader and the accounting every report uses."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from steps.core.errors import ArtifactError
from steps.data import fashion_mnist
from steps.nn import compression

needs_fmnist = pytest.mark.skipif(
    not (fashion_mnist.root() / fashion_mnist.FILES["test"][0]).is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


@needs_fmnist
def test_fashion_mnist_loads_stratified_and_normalised():
    x, y = fashion_mnist.load("test", n=1000, size=14, seed=1)
    assert x.shape == (1000, 1, 14, 14) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == [100] * 10
    assert np.array_equal(fashion_mnist.load("test", n=1000, size=14, seed=1)[0], x)
    raw, _ = fashion_mnist.load("test", n=1000, size=14, seed=1, normalize=False)
    assert raw.min() >= 0.0 and raw.max() <= 1.0
    # area downsampling by 2 is the mean of each 2×2 block
    full, _ = fashion_mnist.load("test", n=10, size=28, seed=0, normalize=False)
    half, _ = fashion_mnist.load("test", n=10, size=14, seed=0, normalize=False)
    assert np.allclose(half[:, 0, 0, 0], full[:, 0, :2, :2].mean(axis=(1, 2)))


@pytest.mark.parametrize("size", [16, 10, 20, 14, 7])
def test_area_downsampling_equals_torch_area_interpolation(size):
    """numpy area resampling (no torch import in the data step) = F.interpolate(mode="area"), bit
    for bit (gpusq_vit's INT4 QAT arms move with a 1e-7 change of their inputs)."""
    images = np.random.default_rng(size).random((200, 28, 28), dtype=np.float32)
    ours = fashion_mnist.downsample(images, size)
    ref = torch.nn.functional.interpolate(torch.from_numpy(images)[:, None], size=(size, size), mode="area")[:, 0]
    assert ours.shape == (200, size, size) and ours.dtype == np.float32
    if 28 % size:  # the general path: torch's summation order
        assert np.array_equal(ours, ref.numpy())
    else:  # block means (the loader's path for 14 and 7 since the start)
        assert np.allclose(ours, ref.numpy(), atol=1e-6)


@needs_fmnist
def test_fashion_mnist_train_statistics_match_the_constants():
    images, labels = fashion_mnist.raw("train")
    assert images.shape == (60000, 28, 28) and np.bincount(labels).tolist() == [6000] * 10
    x = images / 255.0
    assert abs(x.mean() - fashion_mnist.MEAN) < 1e-3 and abs(x.std() - fashion_mnist.STD) < 1e-3


def test_missing_or_corrupt_fashion_mnist_is_one_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.raw("test", tmp_path)
    name = fashion_mnist.FILES["test"][1]
    (tmp_path / name).write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02"))
    with pytest.raises(ArtifactError, match="SHA-256"):
        fashion_mnist.read_idx(tmp_path / name)
    with pytest.raises(ArtifactError, match="truncated"):
        fashion_mnist.read_idx(tmp_path / name, check=False)
    with pytest.raises(ValueError, match="split"):
        fashion_mnist.raw("validation", tmp_path)


@needs_fmnist
def test_environment_variable_points_at_another_copy(tmp_path, monkeypatch):
    for name in fashion_mnist.FILES["test"]:
        shutil.copy(fashion_mnist.DEFAULT_ROOT / name, tmp_path / name)
    monkeypatch.setenv("PAPERZOO_FASHION_MNIST", str(tmp_path))
    assert fashion_mnist.raw("test")[0].shape == (10000, 28, 28)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.dw(torch.relu(self.conv(x)))).flatten(1))


def test_flops_agree_with_torch_flop_counter_and_sparsity_scales_them():
    net, x = _Net(), torch.zeros(2, 1, 14, 14)
    with FlopCounterMode(display=False) as counter:
        net(x)
    f = compression.flops(net, x)
    assert f["dense"] == counter.get_total_flops() and f["sparse"] == pytest.approx(f["dense"])
    with torch.no_grad():
        net.fc.weight[:, ::2] = 0.0  # half of the linear layer's weights
    rows = {r["name"]: r for r in compression.layer_flops(net, x)}
    assert rows["fc"]["density"] == 0.5 and rows["fc"]["sparse_flops"] == rows["fc"]["flops"] / 2
    assert compression.flops(net, x)["dense"] == f["dense"]


def test_params_and_storage_bits_count_formats_and_index_overhead():
    lin = nn.Linear(8, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 2, 0] * 2] * 4))  # a valid 2:4 pattern
        lin.bias.zero_()
    assert compression.count_params(lin) == {"total": 36, "nonzero": 16}
    assert compression.storage_bits(lin, 32) == 36 * 32
    assert compression.storage_bits(lin, {"default": 8, "bias": 32}) == 32 * 8 + 4 * 32
    # 2:4: 8 groups × (2 kept × 4 bits + 3 index bits), the bias dense
    assert compression.storage_bits(lin, 4, "2:4") == 8 * (2 * 4 + 3) + 4 * 4
    # CSR: 16 non-zeros × (8 + 16) + 5 row pointers × 32
    assert compression.tensor_bits(lin.weight, 8, "csr") == 16 * 24 + 5 * 32
    with pytest.raises(ValueError, match="storage format"):
        compression.tensor_bits(lin.weight, 8, "coo")


def test_account_is_json_ready_and_measures_latency():
    import json

    acc = compression.account(_Net(), torch.zeros(1, 1, 14, 14), latency_threads=1)
    json.dumps(acc)
    assert acc["params"]["total"] == acc["params"]["nonzero"] > 0
    assert acc["latency"]["median_s"] > 0 and acc["storage_mb"] == acc["storage_bits"] / 8e6
