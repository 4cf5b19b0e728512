"""steps.nn.lpips: the plain-torch LPIPS (AlexNet, v0.1) used by full-scale distillation."""

from __future__ import annotations

import pytest
import torch

from steps.nn import lpips


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return lpips.LPIPS()


def images(n=3, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_shape_identity_symmetry_and_positivity(net):
    x, y = images(seed=0), images(seed=1)
    d = net(x, y)
    assert d.shape == (3,)
    assert torch.allclose(net(x, x), torch.zeros(3), atol=1e-6)
    assert torch.allclose(d, net(y, x), atol=1e-6)
    # squared differences weighted by the heads: non-negative once the heads are (as trained ones are)
    pos = lpips.LPIPS()
    for i in range(len(lpips.CHANNELS)):
        getattr(pos, f"lin{i}").model[1].weight.data.abs_()
    assert (pos(x, y) > 0).all()


def test_gradients_reach_the_input_not_the_weights(net):
    x = images().requires_grad_(True)
    net(x, images(seed=1)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training  # always eval: the heads' dropout stays off


def test_state_dict_names_match_torchvision_and_lpips(net):
    keys = set(net.state_dict())
    assert {"features.0.weight", "features.3.bias", "features.10.weight"} <= keys
    assert {f"lin{i}.model.1.weight" for i in range(5)} <= keys
    assert net.features[0].weight.shape == (64, 3, 11, 11) and net.lin2.model[1].weight.shape == (1, 384, 1, 1)


def test_loads_torchvision_style_and_lpips_style_files(tmp_path):
    src = lpips.LPIPS()
    for p in src.parameters():
        p.data.normal_()
    trunk = {f"features.{k}": v for k, v in src.features.state_dict().items()}
    trunk |= {"classifier.1.weight": torch.zeros(4096, 9216 // 64), "classifier.1.bias": torch.zeros(4096)}
    heads = {k: v for k, v in src.state_dict().items() if k.startswith("lin")}
    torch.save(trunk, tmp_path / "alexnet-owt.pth")
    torch.save(heads, tmp_path / "alex.pth")
    net = lpips.build(tmp_path / "alexnet-owt.pth", tmp_path / "alex.pth")
    for k, v in src.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    x, y = images(seed=2), images(seed=3)
    assert torch.allclose(net(x, y), src(x, y))


def test_missing_head_weights_are_reported():
    with pytest.raises(ValueError, match="lin4.model.1.weight"):
        lpips.LPIPS().load_heads({f"lin{i}.model.1.weight": torch.zeros(1, c, 1, 1) for i, c in enumerate(lpips.CHANNELS[:4])})
