"""Out-of-distribution sets that need no download, made to match an in-distribution set.

Every set has the reference set's image shape and its uint8 pixel scale and is seeded. Its
labels are -1 (no class), except ``noisy``'s: its images are the reference test images under
covariate shift, and keep their classes (so a conformal set's coverage can be measured there).
``other`` is the real other dataset of the MNIST / Fashion-MNIST pair.

=================  ========================================================================
name               images
=================  ========================================================================
gaussian-noise     i.i.d. normal pixels with the reference test set's pixel mean and std
uniform-noise      i.i.d. uniform pixels in 0..255
noisy              the reference test images plus normal noise (std 0.3 of full scale)
fake               smooth random images: 7x7 uniform noise upsampled bilinearly (like
                   torchvision's FakeData, but with spatial structure)
fakedata           torchvision's ``FakeData`` as it draws its pixels: i.i.d. standard normal
                   values, written as bytes the way its ``ToPILImage`` does (times 255, the
                   integer part's low 8 bits): the set paper 004 names
other              the other of MNIST / Fashion-MNIST (test split)
=================  ========================================================================
"""

from __future__ import annotations

import torch

from synsample.data import Dataset, load
from synsample.data.catalog import OOD_SETS, OTHER
from synsample.errors import DataError

__all__ = ["OOD_SETS", "OTHER", "make_ood", "ood_applies"]

NOISY_STD = 0.3


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def ood_applies(name: str, dataset: str) -> bool:
    """Whether the OoD set ``name`` is defined for ``dataset`` (``other`` only for the MNIST /
    Fashion-MNIST pair; the generated sets for every dataset).

    Args:
        name: a name of [`OOD_SETS`][synsample.data.catalog.OOD_SETS].
        dataset: the in-distribution dataset's name.

    Returns:
        Whether the set can be made.
    """
    return name != "other" or dataset in OTHER


def make_ood(name: str, reference, items: int | None = None, seed: int = 0):
    """The OoD set ``name`` shaped like ``reference`` (a test [`Dataset`][synsample.data.Dataset]).

    Args:
        name: a name of [`OOD_SETS`][synsample.data.catalog.OOD_SETS].
        reference (Dataset): the in-distribution test set.
        items: the most items (default: as many as ``reference``).
        seed: seeds the generated images.

    Returns:
        (Dataset): the OoD set (labels -1, except ``noisy``'s).

    Raises:
        DataError: for an unknown set, or ``other`` for a dataset outside the pair.
    """

    if name not in OOD_SETS:
        raise DataError(f"unknown OoD set {name!r}; use one of {', '.join(OOD_SETS)}")
    n = len(reference) if items is None else min(items, len(reference))
    shape = (n, *reference.images.shape[1:])
    g = torch.Generator().manual_seed(seed)
    ref = reference.images[:n].to(torch.float32)
    if name == "gaussian-noise":
        mean, std = reference.images.float().mean(), reference.images.float().std()
        images = _to_uint8(mean + std * torch.randn(shape, generator=g))
    elif name == "uniform-noise":
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    elif name == "noisy":
        images = _to_uint8(ref + NOISY_STD * 255 * torch.randn(shape, generator=g))
    elif name == "fake":
        low = torch.rand((n, shape[1], 7, 7), generator=g) * 255
        images = _to_uint8(torch.nn.functional.interpolate(low, size=shape[2:], mode="bilinear",
                                                           align_corners=False))
    elif name == "fakedata":
        # ToPILImage: x.mul(255).byte(), which keeps the low byte of the truncated integer
        wrapped = torch.trunc(torch.randn(shape, generator=g) * 255).to(torch.int64) % 256
        images = wrapped.to(torch.uint8)
    else:
        if reference.name not in OTHER:
            raise DataError(f"'other' is defined for MNIST and Fashion-MNIST, not "
                            f"{reference.name}")
        other = load(OTHER[reference.name], "test")
        images = other.images[:n]
        return Dataset(f"{reference.name}/ood:other ({other.name})", "test", images,
                       torch.full((n,), -1, dtype=torch.int64), reference.classes, other.source,
                       other.verified, {"ood": name, "seed": seed})
    labels = (reference.labels[:n].clone() if name == "noisy"
              else torch.full((n,), -1, dtype=torch.int64))
    return Dataset(f"{reference.name}/ood:{name}", "test", images, labels, reference.classes,
                   f"generated (seed {seed})", None, {"ood": name, "seed": seed})
