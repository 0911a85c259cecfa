"""Imperfect coins over time (issue 8's dynamic non-idealities): successive bits of a device
that are correlated, and a probability that drifts.

Time is the pass index: pass ``t`` of a run is the ``t``-th time every device is read. The
bits of device ``j`` (element ``j``, row-major, of the probability tensor a layer asks for)
form a Markov chain with lag-1 autocorrelation ``rho``: at each pass the device keeps its last
value with probability ``rho`` and makes a fresh one otherwise (pass 0 is always fresh). So
``corr(b_t, b_{t+k}) = rho^k`` and the fraction of 1s stays ``p``. Its ``P(1)`` drifts by
``drift`` per pass: ``p_t = clip(p + drift t, 0, 1)`` (``p`` as the base device realises it).

Every bit is a hash of ``(run seed, device seed, layer, pass, element)``: the value a device
holds at pass ``t`` is found by looking back to its last fresh value, so passes drawn in any
chunking give the same bits, and the engine's shared-mode votes still do not depend on
``sample_chunk`` or ``batch_size``. The bits exist along passes, not items: a layer that draws
per item (independent mode, dropout on activations, NSM synapses) gets a clear error.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from synsample.devices.base import RandomSource
from synsample.devices.coins import CoinWrapper
from synsample.errors import ConfigError

_UNIFORM_BITS = 24


def _uniform(key: int, stream: int, passes: torch.Tensor, elements: torch.Tensor
             ) -> torch.Tensor:
    """A uniform in [0, 1) per (pass, element) pair (broadcast), float64, 24 bits."""
    from synsample import randomness

    base = randomness.mix64(torch.tensor(randomness.as_int64(key), dtype=torch.int64)
                             ^ (passes.to(torch.int64) * 2 + stream))
    x = randomness.mix64(base ^ elements.to(torch.int64))
    return randomness.shr(x, 64 - _UNIFORM_BITS).to(torch.float64) / 2.0 ** _UNIFORM_BITS


class TemporalCoin(CoinWrapper):
    """``base`` read once per pass, with correlated successive bits and drift, all seeded.

    Args:
        base: the coin that sets the precision (an ideal coin by default).
        autocorrelation: ``rho``, in [0, 1).
        drift: the change of ``P(1)`` per pass.
        seed: which devices.

    Raises:
        ConfigError: for ``rho`` outside [0, 1) or a drift that is not finite.
    """

    name = "temporal"

    def __init__(self, base: RandomSource | None = None, autocorrelation: float = 0.0,
                 drift: float = 0.0, seed: int = 0) -> None:
        super().__init__(base)
        if not 0.0 <= autocorrelation < 1.0 or not math.isfinite(drift):
            raise ConfigError("a temporal coin needs 0 <= autocorrelation < 1 and a finite drift "
                              "(change of P(1) per pass)")
        self.autocorrelation, self.drift, self.seed = autocorrelation, drift, seed

    def probability(self, p: torch.Tensor, pool: str = "") -> torch.Tensor:
        """``P(1)`` at pass 0, as the base device realises it.

        Args:
            p: the asked probabilities.
            pool: the pool's name.

        Returns:
            The base device's realised probabilities.
        """
        return self.base.probability(p, pool)

    def probability_at(self, prob: torch.Tensor, passes: torch.Tensor) -> torch.Tensor:
        """The drifted ``P(1)`` of every device at each pass, ``clip(p + drift t, 0, 1)``.

        Args:
            prob: the realised probabilities at pass 0.
            passes: the pass indices ``t``.

        Returns:
            ``[len(passes), *prob.shape]``, float64.
        """
        t = passes.to(torch.float64).reshape(-1, *([1] * prob.dim()))
        return (prob.to(torch.float64) + self.drift * t).clamp(0.0, 1.0)

    def fresh_pass(self, run_key: int, passes: torch.Tensor, numel: int) -> torch.Tensor:
        """``[len(passes), numel]`` (int64): the pass at which each of ``numel`` devices last
        made a fresh value, by looking back from each pass (a geometric number of steps).

        Args:
            run_key: the layer's key in the run.
            passes: the pass indices.
            numel: the number of devices.

        Returns:
            The pass of each device's last fresh uniform, per pass.
        """
        last = passes.to(torch.int64)[:, None].repeat(1, numel)
        if self.autocorrelation == 0.0:
            return last
        elements = torch.arange(numel, device=passes.device).expand_as(last)
        todo = torch.ones_like(last, dtype=torch.bool)
        while todo.any():
            s = last[todo]
            fresh = (_uniform(run_key, 0, s, elements[todo]) >= self.autocorrelation) | (s == 0)
            last[todo] = torch.where(fresh, s, s - 1)
            todo[todo.clone()] = ~fresh
        return last

    def draw_passes(self, prob: torch.Tensor, ctx, tag: str = "", workers: int = 1
                    ) -> torch.Tensor:
        """The bits of the context's passes: each device's uniform from its last fresh pass,
        compared with its drifted ``P(1)`` at the current pass.

        Args:
            prob: the realised probabilities at pass 0.
            ctx (SamplingContext): a shared-mode context (its seed and passes).
            tag: the layer's name (it keys the devices' bits).
            workers: ignored (the passes are drawn one after the other).

        Returns:
            ``[ctx.n, *prob.shape]`` booleans.

        Raises:
            ConfigError: in independent mode.
        """
        if ctx.mode != "shared":
            raise ConfigError("a temporal coin's bits run along passes: sample in shared mode "
                              "(correlation and drift are not modelled per item)")
        from synsample import randomness
        from synsample.randomness import derive_seed

        run_key = randomness.layer_key(derive_seed(ctx.seed, self.seed),
                                        randomness.layer_id(tag))
        passes = torch.arange(ctx.first, ctx.first + ctx.n, device=prob.device)
        numel = prob.numel()
        fresh = self.fresh_pass(run_key, passes, numel)
        elements = torch.arange(numel, device=prob.device).expand_as(fresh)
        u = _uniform(run_key, 1, fresh, elements)
        self.draws += fresh.numel()
        return (u < self.probability_at(prob, passes).reshape(ctx.n, numel)).reshape(
            ctx.n, *prob.shape)

    def draw(self, prob: torch.Tensor, generator: torch.Generator | None,
             leading: tuple[int, ...] = ()) -> torch.Tensor:
        """Refused: a temporal coin draws along passes only
        ([`draw_passes`][synsample.devices.temporal.TemporalCoin.draw_passes]).

        Args:
            prob: unused.
            generator: unused.
            leading: unused.

        Returns:
            Never returns.

        Raises:
            ConfigError: always.
        """
        raise ConfigError("a temporal coin's bits run along passes: use it with a method that "
                          "draws its coins per pass (scANN, MC-DropConnect) through the engine")

    def counter_thresholds(self, prob: torch.Tensor) -> tuple[int, torch.Tensor]:
        """Refused: counter-based draws are per item, a temporal coin's bits per pass.

        Args:
            prob: unused.

        Returns:
            Never returns.

        Raises:
            ConfigError: always.
        """
        raise ConfigError("a temporal coin's bits run along passes, not items: sample in shared "
                          "mode, with a method that draws its coins per pass (scANN, "
                          "MC-DropConnect)")

    def describe(self) -> dict[str, Any]:
        """The device's parameters, for reports.

        Returns:
            Name, base coin, autocorrelation, drift, seed and bits per draw.
        """
        return {"device": self.name, "base": self.base.describe(),
                "autocorrelation": self.autocorrelation, "drift_per_pass": self.drift,
                "seed": self.seed, "bits_per_draw": self.bits_per_draw}
