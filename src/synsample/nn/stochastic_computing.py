"""Quantized stochastic computing (paper 003): n-state quantization, XNOR multiplication of
bipolar bitstreams, addition by a parallel counter, the sigmoid as a look-up table.

A dense layer ``y_i = sigmoid(sum_j x_j w_ij)`` becomes: every input and weight, quantized to
``n`` states on [-1, 1] (eq. 1-3), is a bipolar bitstream of L bits; each product is the XNOR
of two streams (``P = p_x p_w + (1 - p_x)(1 - p_w)``, which is ``(1 + x w) / 2`` for ideal
streams); a parallel counter adds the ones of all products; the estimate of ``sum_j x_j w_ij``
is ``(2 count - n_in L) / L``; the LUT maps the count to one of the few quantized sigmoid
states (3 for n = 5, 6 for n = 11, Fig. 4a).

Two paths compute the counter:

- [`xnor_popcount`][synsample.nn.stochastic_computing.xnor_popcount]: the bit level, streams packed
  into 64-bit words, XNOR and popcount: what the hardware does, for checking and small runs;
- [`counter_sample`][synsample.nn.stochastic_computing.counter_sample]: the counter's exact
  distribution without the bits. For one neuron the product bits are independent (different
  streams), and with quantized operands a product bit's probability takes few distinct values ``q``:
  the count is a sum of ``Binomial(L m_q, q)`` with ``m_q`` the number of products of probability
  ``q``. Exact in distribution per neuron; the bit level also keeps the correlation between neurons
  that share an input stream.
"""

from __future__ import annotations

import torch

from synsample.errors import ConfigError
from synsample.randomness import shr

_M64 = -1  # all 64 bits set, as int64


def quantize(m: torch.Tensor, n: int, a: float = -1.0, b: float = 1.0) -> torch.Tensor:
    """Clip to [a, b], then round to the nearest of ``n`` evenly spaced states
    ``a, a + Delta, ..., b`` with ``Delta = (b - a) / (n - 1)`` (ties to even, as round)
    (paper 003, eq. 1-3).

    Args:
        m: the values.
        n: the number of states, at least 2.
        a: the lower limit.
        b: the upper limit.

    Returns:
        The quantized values, same shape.

    Raises:
        ConfigError: for fewer than 2 states.
    """
    if not isinstance(n, int) or n < 2:
        raise ConfigError(f"quantization needs at least 2 states, got {n!r}")
    delta = (b - a) / (n - 1)
    return torch.round((m.clamp(a, b) - a) / delta) * delta + a


class _QuantizeSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, m, n, a, b):
        ctx.save_for_backward(m)
        ctx.bounds = (a, b)
        return quantize(m, n, a, b)

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        a, b = ctx.bounds
        return grad * ((m >= a) & (m <= b)).to(grad.dtype), None, None, None


def quantize_ste(m: torch.Tensor, n: int, a: float = -1.0, b: float = 1.0) -> torch.Tensor:
    """[`quantize`][synsample.nn.stochastic_computing.quantize] forward, the straight-through
    estimator backward (section III, refs. [28], [29]): the gradient passes unchanged inside [a, b]
    and is 0 where the clip acts.

    Args:
        m: the values.
        n: the number of states.
        a: the lower limit.
        b: the upper limit.

    Returns:
        The quantized values (paper 003, eq. 1-3), with the straight-through gradient.
    """
    return _QuantizeSTE.apply(m, n, a, b)


def levels(n: int, a: float = -1.0, b: float = 1.0) -> torch.Tensor:
    """The ``n`` quantized states, ascending.

    Args:
        n: the number of states.
        a: the lower limit.
        b: the upper limit.

    Returns:
        ``[n]`` float64.
    """
    return quantize(torch.linspace(a, b, n, dtype=torch.float64), n, a, b)


# -- the bit level ---------------------------------------------------------------------------
def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """Bool streams ``[..., L]`` as int64 words ``[..., ceil(L / 64)]`` (bit t of word t // 64
    is stream bit t; the padding bits are 0).

    Args:
        bits: bool streams ``[..., L]``.

    Returns:
        int64 words ``[..., ceil(L / 64)]``.
    """
    length = bits.shape[-1]
    pad = -length % 64
    b = torch.nn.functional.pad(bits.to(torch.int64), (0, pad)).reshape(*bits.shape[:-1], -1, 64)
    return (b << torch.arange(64, device=bits.device)).sum(-1)


def popcount(words: torch.Tensor) -> torch.Tensor:
    """Ones in each int64 word (SWAR: pairs, nibbles, bytes, then a multiply-add).

    Args:
        words: int64 words holding 64 bits each.

    Returns:
        The count of set bits per word, int64, same shape.
    """
    x = words - (shr(words, 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + (shr(x, 2) & 0x3333333333333333)
    x = (x + shr(x, 4)) & 0x0F0F0F0F0F0F0F0F
    return shr(x * 0x0101010101010101, 56)


def xnor_popcount(x_words: torch.Tensor, w_words: torch.Tensor, length: int) -> torch.Tensor:
    """The parallel counter of a layer at the bit level: ``count[b, i]`` = ones of
    ``XNOR(x_j, w_ij)`` over every input ``j`` and stream bit.

    Args:
        x_words: the input streams ``[B, in, words]`` (from
            [`pack_bits`][synsample.nn.stochastic_computing.pack_bits]).
        w_words: the weight streams ``[out, in, words]``.
        length: L, the stream bits (the padding bits are masked off).

    Returns:
        int64 counts ``[B, out]``.
    """
    words = x_words.shape[-1]
    mask = torch.full((words,), _M64, dtype=torch.int64, device=x_words.device)
    if length % 64:
        mask[-1] = (1 << (length % 64)) - 1
    same = ~(x_words[:, None] ^ w_words[None]) & mask  # [B, out, in, words]
    return popcount(same).sum(dim=(-1, -2))


# -- the counter's distribution --------------------------------------------------------------
def product_probability(px: torch.Tensor, pw: torch.Tensor) -> torch.Tensor:
    """``P(XNOR = 1)`` of two independent bits with ``P(1)`` ``px`` and ``pw``.

    Args:
        px: ``P(1)`` of the first bit.
        pw: ``P(1)`` of the second bit (broadcast with ``px``).

    Returns:
        ``px pw + (1 - px)(1 - pw)``.
    """
    return px * pw + (1 - px) * (1 - pw)


def counter_sample(x_state: torch.Tensor, w_state: torch.Tensor, px_levels: torch.Tensor,
                   pw_levels: torch.Tensor, length: int, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """The parallel counter of a layer drawn from its exact distribution.

    Args:
        x_state: ``[B, in]``, the index of each input's quantized state.
        w_state: ``[out, in]``, the index of each weight's quantized state.
        px_levels: the ``P(1)`` each input state's streams really have (the source's
            realised probabilities).
        pw_levels: the same for the weight states.
        length: L, the stream bits.
        generator: draws the binomials (None: torch's default).

    Returns:
        int64 counts ``[B, out]``: a sum, over the distinct product probabilities ``q``, of
        ``Binomial(length * m_q, q)``.
    """
    nx, nw = len(px_levels), len(pw_levels)
    q = product_probability(px_levels.double()[:, None], pw_levels.double()[None, :])  # [nx, nw]
    onehot_x = torch.nn.functional.one_hot(x_state, nx).to(torch.float64)  # [B, in, nx]
    onehot_w = torch.nn.functional.one_hot(w_state, nw).to(torch.float64)  # [out, in, nw]
    # m[b, i, s, t]: products of input state s and weight state t in neuron i
    m = torch.einsum("bjs,ijt->bist", onehot_x, onehot_w)
    distinct, group = torch.unique(q.flatten(), return_inverse=True)
    per_q = torch.zeros(*m.shape[:2], len(distinct), dtype=torch.float64, device=m.device)
    per_q.index_add_(2, group, m.flatten(2))
    trials = per_q * length
    probs = distinct.expand_as(trials)
    counts = torch.binomial(trials, probs, generator=generator)
    return counts.sum(-1).round().to(torch.int64)


# -- the LUT sigmoid -------------------------------------------------------------------------
def sigmoid_lut(n: int, n_inputs: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The look-up table of the quantized sigmoid over the parallel counter (Fig. 4).

    The neuron's output is ``quantize(sigmoid(s), n)`` with ``s = (2 count - n_inputs L) / L``;
    since sigmoid is in (0, 1), only the states in [0, 1] occur (3 for n = 5, 6 for n = 11).

    Args:
        n: the number of quantization states.
        n_inputs: the layer's inputs (the counter's largest value is ``n_inputs L``).
        length: L, the stream bits.

    Returns:
        ``(thresholds, states)``: the output is ``states[k]`` for the largest ``k`` with
        ``count >= thresholds[k]`` (``thresholds[0] = 0``), integer comparisons only.
    """
    top = n_inputs * length

    def state(count: int) -> float:
        c = torch.tensor([float(count)], dtype=torch.float64)
        return quantize(torch.sigmoid((2 * c - top) / length), n).item()

    # the state never falls as the count grows: find where each new one starts by bisection,
    # O(states x log(n_inputs L)), so a long stream costs no table of n_inputs L entries
    states, first = [state(0)], [0]
    while state(top) != states[-1]:
        lo, hi = first[-1], top  # state(lo) is the current state, state(hi) is not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if state(mid) == states[-1] else (lo, mid)
        states.append(state(hi))
        first.append(hi)
    return torch.tensor(first, dtype=torch.int64), torch.tensor(states, dtype=torch.float32)


def apply_lut(counts: torch.Tensor, thresholds: torch.Tensor, states: torch.Tensor
              ) -> torch.Tensor:
    """The LUT's output state for each counter value.

    Args:
        counts: counter values.
        thresholds: from [`sigmoid_lut`][synsample.nn.stochastic_computing.sigmoid_lut].
        states: from [`sigmoid_lut`][synsample.nn.stochastic_computing.sigmoid_lut].

    Returns:
        The output states, shaped as ``counts``.
    """
    return states[torch.searchsorted(thresholds, counts, right=True) - 1]
