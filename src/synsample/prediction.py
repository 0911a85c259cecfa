"""What a sampling run returns: per-item statistics, never the raw ``K x N x C`` tensor."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from synsample.errors import SynsampleError
from synsample.io import write_with
from synsample.metrics import votes as vote_metrics


@dataclass
class Prediction:
    """Per-item statistics of K sampled passes over N items of C classes.

    ``votes`` ``[N, C]`` int64: samples whose output argmax was each class. ``mean_probs``
    ``[N, C]``: mean over samples of the softmax of the outputs. ``votes_at`` maps a sample
    count k (a few, for accuracy-versus-K curves) to the votes of the first k samples.
    Memory is ``O(N x C)`` whatever K is.

    Attributes:
        votes: ``[N, C]`` int64 vote counts.
        mean_probs: ``[N, C]`` mean softmax over each item's passes.
        samples: K, the passes of the run.
        votes_at: sample count k -> the votes of the first k samples.
        mode: ``shared`` or ``independent``.
        seed: the run's base seed.
        random_bits: the random bits the devices drew.
        seconds: the sampling time.
        info: the model's description and run settings.
        passes: ``[N]`` passes each item got under adaptive stopping, else None.
        expected_entropy: ``[N]`` mean per-pass entropy in bits.
        max_prob_hist: ``[N, 100]`` histogram of per-pass max probabilities.
    """

    votes: torch.Tensor
    mean_probs: torch.Tensor
    samples: int
    votes_at: dict[int, torch.Tensor] = field(default_factory=dict)
    mode: str = "shared"
    seed: int = 0
    random_bits: int = 0
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    #: passes each item got, when adaptive sampling stopped some early (else every item got K)
    passes: torch.Tensor | None = None
    #: ``[N]`` mean over passes of the entropy (bits) of each pass's softmax
    expected_entropy: torch.Tensor | None = None
    #: ``[N, 100]`` counts of passes whose max softmax probability fell in [b/100, (b+1)/100)
    max_prob_hist: torch.Tensor | None = None

    @property
    def num_items(self) -> int:
        """Items predicted (N)."""
        return self.votes.shape[0]

    @property
    def num_classes(self) -> int:
        """Classes voted for (C)."""
        return self.votes.shape[1]

    def first_choice(self) -> torch.Tensor:
        """The class with the most votes per item (paper 000, section II.A).

        Returns:
            ``[N]`` class indices.
        """
        return vote_metrics.first_choice(self.votes)

    def second_choice(self) -> torch.Tensor:
        """The class with the second most votes per item (paper 000, section II.A).

        Returns:
            ``[N]`` class indices, -1 when only one class got votes.
        """
        return vote_metrics.second_choice(self.votes)

    def vote_entropy(self) -> torch.Tensor:
        """Entropy in bits of each item's vote shares (paper 000, eq. 4).

        Returns:
            ``[N]`` float64.
        """
        return vote_metrics.vote_entropy(self.votes)

    def information(self) -> torch.Tensor:
        """``log2(C)`` minus the vote entropy (paper 000, eq. 5).

        Returns:
            ``[N]`` float64, in bits.
        """
        return vote_metrics.information(self.votes)

    def accuracy(self, labels: torch.Tensor) -> float:
        """Share of items whose first choice is the label.

        Args:
            labels: ``[N]`` true classes.

        Returns:
            The accuracy in [0, 1].
        """
        return vote_metrics.accuracy(self.first_choice(), labels)

    def accuracy_vs_samples(self, labels: torch.Tensor) -> dict[int, float]:
        """First-choice accuracy after k samples, for every recorded k (and K).

        Args:
            labels: ``[N]`` true classes.

        Returns:
            k -> accuracy, ascending in k.
        """
        curve = {k: vote_metrics.accuracy(vote_metrics.first_choice(v), labels)
                 for k, v in sorted(self.votes_at.items())}
        curve[self.samples] = self.accuracy(labels)
        return dict(sorted(curve.items()))

    def save(self, path: str | Path) -> None:
        """Write the statistics to one safetensors file (atomically).

        Args:
            path: the file.
        """
        tensors = {"votes": self.votes.contiguous(), "mean_probs": self.mean_probs.contiguous()}
        tensors.update({f"votes_at.{k}": v.contiguous() for k, v in self.votes_at.items()})
        for name in ("passes", "expected_entropy", "max_prob_hist"):
            if getattr(self, name) is not None:
                tensors[name] = getattr(self, name).contiguous()
        meta = {"samples": str(self.samples), "mode": self.mode, "seed": str(self.seed),
                "random_bits": str(self.random_bits), "seconds": repr(self.seconds),
                "info": json.dumps(self.info)}
        write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))

    @classmethod
    def load(cls, path: str | Path) -> Prediction:
        """Read a Prediction written by [`save`][synsample.prediction.Prediction.save] (a one-line
        error for a damaged file).

        Args:
            path: the file.

        Returns:
            The Prediction.

        Raises:
            SynsampleError: for a file that cannot be read as one.
        """
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            return cls(votes=tensors["votes"], mean_probs=tensors["mean_probs"],
                       samples=int(meta["samples"]),
                       votes_at={int(k.split(".", 1)[1]): v for k, v in tensors.items()
                                 if k.startswith("votes_at.")},
                       mode=meta["mode"], seed=int(meta["seed"]),
                       random_bits=int(meta["random_bits"]), seconds=float(meta["seconds"]),
                       info=json.loads(meta.get("info", "{}")), passes=tensors.get("passes"),
                       expected_entropy=tensors.get("expected_entropy"),
                       max_prob_hist=tensors.get("max_prob_hist"))
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            raise SynsampleError(f"{path} is not a readable prediction file ({exc}); delete it "
                                 "and sample again") from exc
