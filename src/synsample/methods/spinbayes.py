"""SpinBayes (paper 004, sections 3.2-3.5): a trained Bayes-by-Backprop network sampled into N
quantized crossbars per layer, one chosen at random per layer and pass by an SOT-MTJ arbiter.

>>> import torch
>>> from synsample import methods, engine, models
>>> net = models.build("lenet5-bbb", seed=0)
>>> sto = methods.spinbayes.convert(net, crossbars=8, bits=4)
>>> images = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
>>> _ = methods.spinbayes.recalibrate_batchnorm(sto, images, batches=2, batch_size=32)
>>> engine.predict(sto, images[:4], samples=5).votes.shape
torch.Size([4, 10])

Every layer's parameters (weights and biases) are N samples of the posterior quantized to Q
bits (eq. 3); a pass picks ``ways`` of them per layer (``n``-way inference, ``n = 1`` by
default, as the paper recommends for uncertainty). Quantization shifts the activations that
BatchNorm was trained on;
[`recalibrate_batchnorm`][synsample.methods.spinbayes.recalibrate_batchnorm] re-estimates its
statistics over a few mini-batches under the quantized crossbars and the chosen ``n`` (section 3.2),
and is part of
the method: call it before sampling.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from synsample.devices import Arbiter, RandomSource, SOTSwitch, precision_bits
from synsample.errors import ConfigError
from synsample.methods.spec import MethodSpec
from synsample.nn import SampledNetwork, split_prefix
from synsample.nn.bayes import BayesLayer
from synsample.nn.crossbar import CrossbarLayer
from synsample.nn.sampling import SamplingContext
from synsample.randomness import derive_seed

#: N = 5 crossbars: ceil(log2 5) = 3 arbiter bits per layer (section 3.5.1's "3 RNGs per
#: layer"), and N Q = 20 bits per parameter gives section 4.3.2's 8x less memory than a
#: 5-member 32-bit ensemble and 1.6x less than MC methods exactly; Q = 4 (section 4.1)
DEFAULT_CROSSBARS = 5
DEFAULT_BITS = 4


def convert(model: nn.Module, crossbars: int = DEFAULT_CROSSBARS, bits: int = DEFAULT_BITS,
            ways: int = 1, coin: RandomSource | None = None, seed: int = 0,
            gain: str | None = "layer") -> SampledNetwork:
    """The SpinBayes model of a trained Bayes-by-Backprop network: each Bayesian layer becomes
    ``crossbars`` posterior samples quantized to ``bits`` bits, chosen ``ways`` at a time by an
    arbiter whose bits come from ``coin`` (an [`SOTSwitch`][synsample.devices.SOTSwitch] by default,
    one device for every layer, so its counter holds the run's arbiter bits). ``seed`` fixes the
    samples; ``gain``: ``layer`` (a per-layer gain so the samples span the Q-bit range) or None (eq.
    3's clip to [-1, 1] as written; see [`synsample.nn.crossbar`][synsample.nn.crossbar]).

    Args:
        model: the trained Bayes-by-Backprop network (copied).
        crossbars: N, posterior samples per layer.
        bits: Q, bits per stored level (paper 004, eq. 3).
        ways: ``n``, crossbars averaged per layer and pass.
        coin: the arbiter's device (an SOT switch by default).
        seed: fixes the posterior samples.
        gain: ``'layer'`` or None.

    Returns:
        The SpinBayes model (a [`SampledNetwork`][synsample.nn.SampledNetwork]), not yet
        re-calibrated.

    Raises:
        ConfigError: for a network without Bayesian layers, bits outside 2 to
            [`MAX_BITS`][synsample.nn.crossbar.MAX_BITS], or ``ways`` and ``crossbars`` that are not
            whole numbers with ``1 <= ways <= crossbars``.
    """
    net = copy.deepcopy(model).eval()
    names = [name for name, m in net.named_modules() if isinstance(m, BayesLayer)]
    if not names:
        raise ConfigError("SpinBayes samples a Bayes-by-Backprop posterior and this network has "
                          "none: make it Bayesian with synsample.methods.bbb.bayesian(model), "
                          "fine-tune it (synsample.train.fit), then convert it; or train "
                          "lenet5-bbb")
    coin = coin if coin is not None else SOTSwitch()
    for index, name in enumerate(names):
        gen = torch.Generator().manual_seed(derive_seed(seed, 0x5B1, index))
        layer = CrossbarLayer.from_bayes(net.get_submodule(name), crossbars, bits,
                                         Arbiter(crossbars, coin, ways), gen, gain)
        layer.layer_name = name
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, child, layer)
    prefix, body = split_prefix(net, names)
    return SampledNetwork(prefix, body, names, method="spinbayes",
                          info={"crossbars": crossbars, "bits": bits, "ways": ways,
                                "gain": gain, "arbiter": coin.describe(),
                                "recalibrated": False})


@torch.no_grad()
def recalibrate_batchnorm(model: SampledNetwork, images: torch.Tensor, batches: int = 20,
                          batch_size: int = 100, seed: int = 0) -> int:
    """Section 3.2's re-calibration: reset every BatchNorm's running statistics and estimate
    them again (a plain average) over ``batches`` mini-batches of ``images``, each one pass
    with its own crossbar choice.

    Args:
        model: the SpinBayes model (its BatchNorm statistics changed in place).
        images: training images, at least ``batch_size`` of them.
        batches: the most mini-batches used.
        batch_size: items per mini-batch.
        seed: seeds the crossbar choices of the mini-batches.

    Returns:
        The number of BatchNorm layers re-calibrated.

    Raises:
        ConfigError: for fewer images than one batch.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if len(images) < batch_size:
        raise ConfigError(f"re-calibration needs at least one batch of {batch_size} images, "
                          f"got {len(images)}")
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    try:
        for i in range(min(batches, len(images) // batch_size)):
            x = images[i * batch_size:(i + 1) * batch_size]
            ctx = SamplingContext.for_samples(derive_seed(seed, 0xBA7C, i), 0, 1, len(x))
            model.sample(model.prefix(x), ctx)
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.eval()
    model.info["recalibrated"] = bool(norms)
    return len(norms)


def convert_with_data(model: nn.Module, crossbars: int = DEFAULT_CROSSBARS, ways: int = 1,
                      coin: RandomSource | None = None, seed: int = 0, gain: str | None = "layer",
                      precision: str | int | None = None, calibration=None) -> SampledNetwork:
    """[`convert`][synsample.methods.spinbayes.convert], then section 3.2's BatchNorm re-calibration
    on ``calibration`` (training images: a tensor, array, Dataset or DataLoader); the method as a
    whole.

    Args:
        model: the trained Bayes-by-Backprop network (copied).
        crossbars: N, posterior samples per layer.
        ways: ``n``, crossbars averaged per layer and pass.
        coin: the arbiter's device (an SOT switch by default).
        seed: fixes the posterior samples and the re-calibration's choices.
        gain: ``'layer'`` or None.
        precision: the crossbars' Q bits (``full``:
            [`DEFAULT_BITS`][synsample.methods.spinbayes.DEFAULT_BITS]).
        calibration (Tensor | ndarray | Dataset | DataLoader | None): training images;
            required when the network has BatchNorm.

    Returns:
        The re-calibrated SpinBayes model.

    Raises:
        ConfigError: as [`convert`][synsample.methods.spinbayes.convert], for a precision that is
            not full or bits, or for a network with BatchNorm and no calibration images.
    """
    from synsample.engine import as_inputs

    bits = precision_bits(precision)
    sto = convert(model, crossbars, DEFAULT_BITS if bits is None else bits, ways, coin, seed, gain)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in sto.modules()):
        if calibration is None:
            raise ConfigError("this network has BatchNorm, which SpinBayes re-estimates under "
                              "the quantized crossbars (paper 004, section 3.2): give "
                              "calibration=training images (2,000 are enough)")
        recalibrate_batchnorm(sto, as_inputs(calibration), seed=seed)
    return sto


def energy_per_image(model: SampledNetwork, images: torch.Tensor, passes: int = 10,
                     assumptions=None, seed: int = 0) -> dict[str, Any]:
    """Tables 4-5: the cost of one image's ``passes`` passes, measured by
    [`synsample.hardware.measure`][synsample.hardware.measure] over ``images`` in independent mode
    (each image draws its own crossbar choices, as the hardware does) and priced by ``assumptions``
    (default: [`synsample.hardware.DEFAULT`][synsample.hardware.DEFAULT], whose crossbar, RNG,
    averaging, adder and comparator energies are Table 4's).

    Args:
        model: the SpinBayes model.
        images: the images measured.
        passes: T, passes per image.
        assumptions (CostAssumptions | None): the energies (None: the defaults).
        seed: the run's seed.

    Returns:
        The cost per image, as [`synsample.hardware.measure`][synsample.hardware.measure] returns
        it.
    """
    from synsample import hardware

    return hardware.measure(model, images, passes, seed=seed,
                            assumptions=assumptions or hardware.DEFAULT, items=len(images))


SPEC = MethodSpec(
    name="spinbayes", title="SpinBayes",
    summary="a Bayes-by-Backprop posterior sampled into N quantized crossbars, one chosen per "
            "layer and pass by an SOT-MTJ arbiter (paper 004)",
    convert=convert_with_data, options=("crossbars", "ways", "coin", "seed", "gain",
                                        "calibration"),
    precision="crossbar Q bits (full: 4)", needs_data="calibration",
    reference="posterior-mean network", exports=True, filters=False)
