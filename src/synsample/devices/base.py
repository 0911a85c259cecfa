"""The device-model interface: a source of random bits that says what it realises and counts.

Methods never call ``torch.rand`` themselves: they ask a device model for draws (Bernoulli for
coins, [`RandomSource`][synsample.devices.base.RandomSource]; other distributions subclass
[`NoiseSource`][synsample.devices.base.NoiseSource]), so the device decides what probabilities it
can realise (precision, bias, spread) and counts every random bit it produced, for the cost model.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

import torch

_POOLS: dict[tuple[int, int], Any] = {}


def _pool(workers: int):
    """A thread pool of ``workers`` threads, made once per size and process (a forked child
    inherits the parent's pool without its threads, and would wait on it for ever)."""
    key = (os.getpid(), workers)
    if key not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor

        _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix="synsample-draw")
    return _POOLS[key]


def pool_seed(seed: int, pool: str) -> int:
    """The seed of one named pool of devices (a layer's) drawn from a device model's ``seed``;
    the unnamed pool keeps ``seed`` itself.

    Args:
        seed: the device model's seed.
        pool: the pool's name (a layer's), or ``""``.

    Returns:
        The pool's seed.
    """
    if not pool:
        return seed
    from synsample.randomness import derive_seed, layer_id

    return derive_seed(seed, layer_id(pool))


class NoiseSource(ABC):
    """A device model that makes random draws and counts the random bits it used."""

    #: short name used in reports and configs
    name: str = "device"
    #: what makes the bits, for the cost model's energy per random bit
    #: (`synsample.hardware.assumptions.TECHNOLOGIES`): a CMOS generator unless a
    #: device says otherwise
    technology: str = "cmos"

    def __init__(self) -> None:
        self.draws = 0

    @property
    def draws(self) -> int:
        """Draws made since construction or the last
        [`reset_counts`][synsample.devices.base.NoiseSource.reset_counts]. Counts recorded as
        tensors on an accelerator ([`count`][synsample.devices.base.NoiseSource.count]) are read
        here, once, not at every call."""
        pending = self.__dict__.get("_pending")
        if pending:
            self._draws += int(torch.stack(pending).sum().item())
            pending.clear()
        return self.__dict__.get("_draws", 0)

    @draws.setter
    def draws(self, value: int) -> None:
        self._draws = int(value)
        self._pending: list[torch.Tensor] = []

    @property
    @abstractmethod
    def bits_per_draw(self) -> int:
        """Random bits one draw consumes on this device."""

    @property
    def random_bits(self) -> int:
        """Random bits produced since construction or the last
        [`reset_counts`][synsample.devices.base.NoiseSource.reset_counts]."""
        return self.draws * self.bits_per_draw

    def reset_counts(self) -> None:
        """Set the draw count to 0."""
        self.draws = 0

    def snapshot(self) -> int:
        """The draw count now, to [`restore`][synsample.devices.base.NoiseSource.restore] after
        draws that must not count (a failed attempt, a timing run, the same shared passes re-made
        for another tile of items).

        Returns:
            The number of draws so far.
        """
        return self.draws

    def restore(self, snapshot: int) -> None:
        """Rewind the draw count to a [`snapshot`][synsample.devices.base.NoiseSource.snapshot].

        Args:
            snapshot: what [`snapshot`][synsample.devices.base.NoiseSource.snapshot] returned.
        """
        self.draws = int(snapshot)

    def count(self, draws: int | torch.Tensor) -> None:
        """Record ``draws`` draws made outside the device's own methods (counter-based kernels,
        or draws a simulation replaces by an exact equivalent).

        Args:
            draws: the number of draws to add; a tensor on an accelerator is kept as it is and
                summed when [`draws`][synsample.devices.base.NoiseSource.draws] is read (no host
                synchronisation per call).
        """
        if isinstance(draws, torch.Tensor) and draws.device.type != "cpu":
            self.__dict__.setdefault("_pending", []).append(draws.detach().reshape(()))
        else:
            self.draws += int(draws)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (name, parameters, bits per draw) for reports.

        Returns:
            ``{"device": name, "bits_per_draw": ...}`` here; subclasses add their parameters.
        """
        return {"device": self.name, "bits_per_draw": self.bits_per_draw}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.describe().items() if k != "device")
        return f"{type(self).__name__}({params})"


class RandomSource(NoiseSource):
    """A device model that makes Bernoulli draws and counts the random bits it used."""

    @abstractmethod
    def probability(self, p: torch.Tensor, pool: str = "") -> torch.Tensor:
        """The probability of a 1 that this device realises when asked for ``p`` in [0, 1]:
        one device per element of ``p``. ``pool`` names the devices (a layer's name), for a
        model whose devices differ from one another: two layers are two pools of devices.

        Args:
            p: the asked probabilities, in [0, 1].
            pool: the devices' pool (a layer's name).

        Returns:
            The realised probabilities, shaped as ``p``.
        """

    def draw(self, prob: torch.Tensor, generator: torch.Generator | None,
             leading: tuple[int, ...] = ()) -> torch.Tensor:
        """Bernoulli draws, a bool tensor of shape ``leading + prob.shape``.

        ``prob`` must be what [`probability`][synsample.devices.base.RandomSource.probability]
        returned (the realised probability), so that a layer can compute it once and draw many
        times.

        Args:
            prob: the realised probabilities.
            generator: the generator of the uniforms (None: torch's default).
            leading: extra leading dimensions (e.g. ``(n,)`` for one draw per sample).

        Returns:
            ``leading + prob.shape`` booleans; each counts as one draw.
        """
        u = torch.rand(leading + tuple(prob.shape), generator=generator, device=prob.device,
                       dtype=torch.float32)
        self.draws += u.numel()
        return u < prob

    def draw_passes(self, prob: torch.Tensor, ctx, tag: str = "", workers: int = 1
                    ) -> torch.Tensor:
        """Shared-mode draws of the passes of the sampling context ``ctx``, a bool tensor
        ``[ctx.n, *prob.shape]``: one [`draw`][synsample.devices.base.RandomSource.draw] per pass
        generator. ``tag`` names the devices (the layer), for a device whose bits depend on their
        history (see [`TemporalCoin`][synsample.devices.temporal.TemporalCoin]).

        Args:
            prob: the realised probabilities.
            ctx (SamplingContext): the context whose pass generators draw.
            tag: the devices' name (the layer).
            workers: threads that fill the passes' uniforms at once, on the CPU, for a device
                with [`parallel_draws`][synsample.devices.base.RandomSource.parallel_draws] (each
                pass has its own generator, so the bits do not depend on it; PyTorch draws one
                generator's numbers on one thread).

        Returns:
            ``[ctx.n, *prob.shape]`` booleans.
        """
        gens = ctx.generators
        if workers < 2 or len(gens) < 2 or prob.device.type != "cpu" or not self.parallel_draws:
            return torch.stack([self.draw(prob, g) for g in gens])
        u = torch.empty((len(gens), *prob.shape), dtype=torch.float32)

        def fill(first: int) -> None:
            for i in range(first, len(gens), workers):
                u[i].uniform_(generator=gens[i])  # what draw's torch.rand(generator=g) draws

        list(_pool(workers).map(fill, range(workers)))
        self.draws += u.numel()
        return u < prob

    @property
    def parallel_draws(self) -> bool:
        """Whether [`draw_passes`][synsample.devices.base.RandomSource.draw_passes] may fill the
        passes' uniforms on several threads: the
        device draws as this class does (one uniform per draw, compared with ``prob``)."""
        return (type(self).draw is RandomSource.draw
                and type(self).draw_passes is RandomSource.draw_passes)

    def counter_thresholds(self, prob: torch.Tensor) -> tuple[int, torch.Tensor]:
        """The draw as an integer comparator, for counter-based generators.

        With ``bits = bits_per_draw`` and ``t = ceil(prob * 2^bits)`` a draw is
        [`draw`][synsample.devices.base.RandomSource.draw]'s ``u < prob`` for ``u = r / 2^bits``:
        for an integer ``r``, ``r < prob * 2^bits`` if and only if ``r < ceil(prob * 2^bits)``.

        Args:
            prob: the realised probabilities.

        Returns:
            ``(bits, t)``: a draw is 1 when a uniform ``bits``-bit integer ``r`` is below
            ``t`` (int64, same shape as ``prob``).

        Raises:
            ValueError: for a device with more than 24 (or fewer than 1) bits per draw.
        """
        bits = self.bits_per_draw
        if not 1 <= bits <= 24:
            raise ValueError(f"{self!r}: counter-based draws support 1 to 24 bits per draw")
        return bits, torch.ceil(prob.to(torch.float64) * 2.0 ** bits).to(torch.int64)
