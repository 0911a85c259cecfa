"""scANN on a network trained the ordinary way: plain Adam, no [-1, 1] clip.

Trains a 784-400-10 MLP of your own on MNIST (its weights stay far below 1), then samples it
with scANN as the paper reads weights (gain=None), with each layer scaled to the whole coin
range (gain="layer") and with each output unit scaled so (gain="row").
Run: ``python examples/scann_gain_mnist.py [--epochs 10] [--samples 100]``.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import synsample as ss
from synsample import data


class MyMLP(nn.Module):
    """A network written the way a researcher would: its own forward, inputs in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(784, 400)
        self.out = nn.Linear(400, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x.flatten(1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    parser.add_argument("--samples", type=int, default=100, help="passes K (default 100)")
    args = parser.parse_args()
    torch.manual_seed(0)
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    x_train, x_test = train.images.float() / 255, test.images.float() / 255
    net = MyMLP()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(args.epochs):
        for idx in torch.randperm(len(x_train)).split(100):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x_train[idx]), train.labels[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        deterministic = (net(x_test).argmax(1) == test.labels).float().mean().item()
    top = max(m.weight.abs().max().item() for m in net.modules() if isinstance(m, nn.Linear))
    print(f"deterministic accuracy {100 * deterministic:.2f}%, largest |w| {top:.3f}")
    for gain in (None, "layer", "row"):
        sto = ss.convert(net, "scann", gain=gain)
        pred = ss.predict(sto, x_test, samples=args.samples, seed=0)
        accuracy = (pred.first_choice() == test.labels).float().mean().item()
        print(f"scANN gain={gain!s:5}: {100 * accuracy:.2f}% at K = {args.samples} "
              f"({100 * (accuracy - deterministic):+.2f} points)")


if __name__ == "__main__":
    main()
