"""The networks of the distillation tables on 20 x 20 time-frequency inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from audioforge.errors import ConfigError
from lightning_modules.networks import NETWORKS, build_network

SMALL = {"resnet18": {"widths": (8, 16, 32, 64)}, "resnet18bn": {"widths": (8, 16, 32, 64)},
         "vgg11": {"width_scale": 0.125}, "vgg11bn": {"width_scale": 0.125}}


@pytest.mark.parametrize("name", ["resnet18", "resnet18bn", "vgg11", "vgg11bn"])
def test_final_map_keeps_five_by_five_on_20x20_and_follows_larger_inputs(name):
    for shape, side in (((3, 20, 20), 5), ((1, 32, 32), 8), ((3, 20, 76), None)):
        net = build_network(name, shape, 10)
        fmap = net.feature_map(torch.zeros(2, *shape))
        assert fmap.shape[-2:] == net.final_map and min(net.final_map) >= 5, (shape, fmap.shape)
        if side is not None:
            assert net.final_map == (side, side)
    norms = {type(m).__name__ for m in build_network(name, (3, 20, 20), 10).modules()}
    assert ("BatchNorm2d" in norms) == name.endswith("bn") and ("GroupNorm" in norms) != name.endswith("bn")


@pytest.mark.parametrize("name", ["resnet18", "resnet18bn", "vgg11", "vgg11bn"])
def test_networks_learn_a_separable_task_on_20x20(name):
    """Four classes told apart by where a bump sits on the coefficient axis (a time average would
    keep it, a network that pools the coefficient axis away early could not)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(32)
    x = 0.5 * torch.randn(len(y), 3, 20, 20, generator=g)
    for c in range(4):
        x[y == c, :, 5 * c:5 * c + 5, :] += 1.5
    torch.manual_seed(0)
    net = build_network(name, (3, 20, 20), 4, **SMALL[name])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(40):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    xt = 0.5 * torch.randn(len(y), 3, 20, 20, generator=g)
    for c in range(4):
        xt[y == c, :, 5 * c:5 * c + 5, :] += 1.5
    with torch.no_grad():
        assert float((net(xt).argmax(1) == y).float().mean()) >= 0.9


def test_bad_network_arguments_are_config_errors():
    assert {"convnet", "resnet18", "resnet18bn", "vgg11", "vgg11bn"} <= set(NETWORKS)
    with pytest.raises(ConfigError, match="bad arguments for network 'resnet18'.*min_map"):
        build_network("resnet18", (3, 20, 20), 10, min_map=0)
    with pytest.raises(ConfigError, match="unknown network 'resnet50'"):
        build_network("resnet50", (3, 20, 20), 10)


@pytest.mark.parametrize("name, kwargs, layout", [
    ("convnet", {}, torch.contiguous_format),                 # instance norm (GroupNorm): default layout
    ("convnet", {"norm": "batch"}, torch.channels_last),
    ("resnet18", {}, torch.contiguous_format),
    ("resnet18bn", {}, torch.channels_last),
    ("unlearning_cnn", {}, torch.channels_last)])
def test_channels_last_only_where_the_network_has_no_group_norm(name, kwargs, layout):
    from lightning_modules.classifier import ClassifierModule
    from lightning_modules.networks.norms import memory_format

    shape = (1, 20, 20) if name == "unlearning_cnn" else (3, 20, 20)
    net = build_network(name, shape, 10, **kwargs)
    assert memory_format(net, channels_last=True) == layout
    assert memory_format(net, channels_last=False) == torch.contiguous_format
    module = ClassifierModule(name, shape, 10, network_kwargs=kwargs)
    conv = next(m for m in module.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=layout)
