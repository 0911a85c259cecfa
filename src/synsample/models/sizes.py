"""Parameter counts of the topologies of paper 004's memory comparison (Fig. 7, section
4.3.2), from networks built here on the meta device (no weights, no torchvision): LeNet-5 as
[`synsample.models`][synsample.models] trains it, and ResNet-18 / ResNet-34 in torchvision's
ImageNet shape
(basic blocks, 1000 classes)."""

from __future__ import annotations

import torch
from torch import nn


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))


def resnet(blocks: tuple[int, int, int, int], classes: int = 1000) -> nn.Module:
    """A ResNet with basic blocks (``(2, 2, 2, 2)``: ResNet-18; ``(3, 4, 6, 3)``: ResNet-34);
    only its parameters matter here (no forward).

    Args:
        blocks: basic blocks per stage.
        classes: outputs of the final linear layer.

    Returns:
        The network's modules (it has no ``forward``).
    """
    net = nn.Module()
    net.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(64)
    cin = 64
    for i, (count, cout) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
        layers = []
        for b in range(count):
            layers.append(_BasicBlock(cin, cout, 2 if b == 0 and i > 0 else 1))
            cin = cout
        setattr(net, f"layer{i + 1}", nn.Sequential(*layers))
    net.fc = nn.Linear(512, classes)
    return net


def parameter_counts() -> dict[str, int]:
    """Trainable parameters of each topology of the memory comparison.

    Returns:
        Parameters by topology name.
    """
    from synsample import models

    with torch.device("meta"):
        nets = {"LeNet-5 (MNIST)": models.build("lenet5"),
                "ResNet-18 (ImageNet shape)": resnet((2, 2, 2, 2)),
                "ResNet-34 (ImageNet shape)": resnet((3, 4, 6, 3))}
    return {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
