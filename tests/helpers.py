"""Test helpers: small synthetic data written in the real formats (named as synthetic)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def synthetic_images(n: int, classes: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images where class c lights up horizontal band c: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, side, side)).astype(np.uint8)
    band = side // classes
    for i, c in enumerate(labels):
        images[i, c * band:(c + 1) * band, :] = rng.integers(180, 256, (band, side))
    return images, labels


def write_synthetic_idx(folder: Path, n_train: int = 400, n_test: int = 200, classes: int = 4,
                        side: int = 8, compress: bool = True, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, names in (("train", n_train, ("train-images-idx3-ubyte",
                                                "train-labels-idx1-ubyte")),
                            ("test", n_test, ("t10k-images-idx3-ubyte",
                                              "t10k-labels-idx1-ubyte"))):
        images, labels = synthetic_images(n, classes, side, seed + (split == "test"))
        suffix = ".gz" if compress else ""
        write_idx(folder / (names[0] + suffix), images, compress)
        write_idx(folder / (names[1] + suffix), labels, compress)
    return folder


def assert_votes_do_not_depend_on_tiling(sto, x, samples: int, mode: str, **tiling) -> None:
    """The same votes and counted random bits (some drawn) whatever the item blocks, sample
    chunks and tiles (``tiling``: the engine's batch_size, sample_chunk, tile)."""
    import torch

    from synsample import engine

    a = engine.predict(sto, x, samples=samples, seed=3, mode=mode)
    b = engine.predict(sto, x, samples=samples, seed=3, mode=mode, **tiling)
    assert torch.equal(a.votes, b.votes)
    assert a.random_bits == b.random_bits > 0


def tiny_scann_mlp():
    """A 64-400-4 scANN MLP with 8-bit coins (uniform-initialised weights, seed 0)."""
    from synsample import devices, models
    from synsample.methods import scann

    return scann.convert(models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0,
                                      init="uniform"), coin=devices.QuantizedCoin(8))


def uint8_images(n: int, seed: int = 0):
    """``n`` random 8x8 uint8 images."""
    import torch

    return torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def sampled_rates(sto) -> dict[str, float]:
    """Each sampled layer's drop rate ``p``, by its name (MC-Dropout, MC-DropConnect)."""
    return {name: layer.p for name, layer in zip(sto.sampled_names, sto.sampled_layers(),
                                                 strict=True)}


def assert_seeded(sto, x, mode: str, seed: int, other_seed: int, samples: int, n: int) -> None:
    """The same seed gives the same votes (``engine.predict``) and the same ``n`` passes of
    the model; another seed gives other passes."""
    import torch

    from synsample import engine

    a = engine.predict(sto, x, samples=samples, seed=seed, mode=mode)
    assert torch.equal(a.votes, engine.predict(sto, x, samples=samples, seed=seed,
                                               mode=mode).votes)
    first = sto(x, n=n, generator=torch.Generator().manual_seed(seed), mode=mode)
    assert torch.equal(first, sto(x, n=n, generator=torch.Generator().manual_seed(seed),
                                  mode=mode))
    assert not torch.equal(first, sto(x, n=n, generator=torch.Generator().manual_seed(other_seed),
                                      mode=mode))
