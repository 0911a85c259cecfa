"""The report's figures (paper 000, Figs. 2-6), written as PNG files."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from synsample.io import write_with  # noqa: E402


def _save(fig, path: Path) -> Path:
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _figure(draw: Callable[..., Path]) -> Callable[..., Path]:
    """A figure function that closes the figures it opened when it fails (matplotlib keeps an
    open figure for the life of the process)."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs) -> Path:
        before = set(plt.get_fignums())
        try:
            return draw(*args, **kwargs)
        except BaseException:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise

    return drawn


@_figure
def confusion_matrices(matrices: Sequence[torch.Tensor], titles: Sequence[str],
                       classes: Sequence[str], path: Path) -> Path:
    """Side-by-side confusion matrices (rows: true class, columns: predicted), row-normalised
    colour, counts written in the cells (Figs. 2, 4, 5)."""
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.4), squeeze=False)
    for ax, mat, title in zip(axes[0], matrices, titles, strict=True):
        m = mat.to(torch.float64).numpy()
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(classes)), [c[:8] for c in classes], rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), [c[:8] for c in classes], fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    return _save(fig, path)


@_figure
def accuracy_curves(curves: dict[str, dict[int, float]], deterministic: float | None,
                    path: Path) -> Path:
    """First-choice accuracy against the number of samples, log x axis (Fig. 2, bottom right)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, curve in curves.items():
        ks = sorted(curve)
        ax.plot(ks, [100 * curve[k] for k in ks], marker="o", ms=3, label=label)
    if deterministic is not None:
        ax.axhline(100 * deterministic, color="k", ls="--", lw=1, label="deterministic")
    ax.set_xscale("log")
    ax.set_xlabel("samples K")
    ax.set_ylabel("first-choice accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


@_figure
def vote_examples(images: torch.Tensor, labels: torch.Tensor, votes: torch.Tensor,
                  classes: Sequence[str], path: Path, columns: int = 6) -> Path:
    """Images with their three most voted classes and vote shares (Fig. 3); the true class in
    black, wrong classes in red."""
    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, y, v in zip(axes.flat, images, labels, votes, strict=False):
        pic = img.permute(1, 2, 0).numpy()
        ax.imshow(pic[..., 0] if pic.shape[2] == 1 else pic, cmap="gray_r" if pic.shape[2] == 1
                  else None)
        share = v.to(torch.float64) / max(1, int(v.sum()))
        top = torch.argsort(share, descending=True, stable=True)[:3]
        for row, c in enumerate(top.tolist()):
            if share[c] <= 0:
                break
            ax.text(0.0, -0.08 - 0.13 * row, f"{classes[c][:10]}: {100 * share[c]:.0f}%",
                    transform=ax.transAxes, fontsize=7, va="top",
                    color="black" if c == int(y) else "red")
    fig.subplots_adjust(hspace=0.9)
    return _save(fig, path)


@_figure
def entropy_histograms(entropy: torch.Tensor, correct: torch.Tensor, max_bits: float,
                       path: Path, title: str = "") -> Path:
    """Histograms of per-item vote entropy for correct and incorrect items (Fig. 6)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    bins = np.linspace(0, max_bits, 31)
    e = entropy.numpy()
    c = correct.numpy()
    for group, name in ((c, "correct"), (~c, "incorrect")):
        if group.any():  # a density of no items is undefined
            ax.hist(e[group], bins=bins, alpha=0.6, density=True,
                    label=f"{name} ({int(group.sum())})")
    ax.set_xlabel("vote entropy (bits, eq. 4)")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


@_figure
def reliability_diagram(bins: Sequence[dict], path: Path, title: str = "") -> Path:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    used = [b for b in bins if b["count"]]
    centers = [(b["low"] + b["high"]) / 2 for b in used]
    widths = [max(1e-3, b["high"] - b["low"]) for b in used]
    ax.bar(centers, [b["accuracy"] for b in used], width=widths, edgecolor="k", alpha=0.7,
           label="accuracy")
    ax.plot([b["confidence"] for b in used], [b["confidence"] for b in used], "r.",
            label="mean confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max mean probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


@_figure
def risk_coverage(curve: dict[str, Sequence[float]], path: Path, score: str) -> Path:
    """Selective risk against coverage (items accepted from the least uncertain by ``score``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.step([100 * c for c in curve["coverage"]], [100 * r for r in curve["risk"]], where="post")
    ax.set_xlabel("coverage (%)")
    ax.set_ylabel("selective risk: error among accepted (%)")
    ax.set_title(f"risk-coverage, accepting by {score}", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


@_figure
def set_sizes(counts: dict[str, Sequence[int]], path: Path, title: str) -> Path:
    """The share of items whose conformal set has 0, 1, 2, ... classes, one bar group per set
    of items (test, then each OoD set)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    width = 0.8 / max(len(counts), 1)
    for i, (name, c) in enumerate(counts.items()):
        share = np.asarray(c, dtype=np.float64) / max(sum(c), 1)
        ax.bar(np.arange(len(c)) + (i - (len(counts) - 1) / 2) * width, 100 * share, width,
               label=name)
    ax.set_xlabel("classes in the conformal set")
    ax.set_ylabel("items (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


@_figure
def ratio_sweep(sweep: Sequence[dict], path: Path, score: str) -> Path:
    """R_cc, R_iu and UA against the threshold fraction T (paper 004, Mobiny et al.)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ts = [r["T"] for r in sweep]
    for key in ("R_cc", "R_iu", "UA"):
        ax.plot(ts, [np.nan if r[key] is None else r[key] for r in sweep], marker="o", ms=3,
                label=key)
    ax.set_xlabel(f"threshold fraction T ({score})")
    ax.set_ylabel("ratio")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


@_figure
def score_histograms(scores: dict[str, torch.Tensor], path: Path, xlabel: str) -> Path:
    """Overlaid histograms of one uncertainty score on several sets (in-distribution, OoD)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    # scores such as the mutual information can be a rounding error below 0
    low = min(0.0, min(float(s.min()) for s in scores.values()))
    top = max(float(s.max()) for s in scores.values())
    bins = np.linspace(low, top if top > low else low + 1.0, 41)
    for name, s in scores.items():
        ax.hist(s.numpy(), bins=bins, density=True, histtype="step", lw=1.5, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return _save(fig, path)


@_figure
def holdout_curves(fractions: Sequence[float], series: dict[str, Sequence[float]], path: Path,
                   title: str = "") -> Path:
    """Entropy and information of the held-out class and of the others against the fraction
    of the class removed from training (Fig. 7 of paper 000)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    xs = [100 * f for f in fractions]
    for label, ys in series.items():
        ax.plot(xs, ys, marker="o", ls="-" if "Out" in label else "--", label=label)
    ax.set_xlabel("training items of the class removed (%)")
    ax.set_ylabel("bits")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


@_figure
def percentile_traces(traces: dict[str, Sequence[Sequence[float]]], path: Path) -> Path:
    """Paper 002 Fig. 2: the 15th, 50th and 85th percentiles of the input to the last hidden
    layer over training steps, one panel per network (rows: ``[step, p15, p50, p85]``)."""
    fig, axes = plt.subplots(1, len(traces), figsize=(4.6 * len(traces), 3.4), squeeze=False,
                             sharey=True)
    for ax, (name, rows) in zip(axes[0], traces.items(), strict=True):
        t = np.asarray(rows, dtype=float)
        if len(t):
            ax.fill_between(t[:, 0], t[:, 1], t[:, 3], alpha=0.25, label="15th-85th")
            ax.plot(t[:, 0], t[:, 2], label="median")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("training step (100 items each)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("input to the last hidden layer")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


@_figure
def training_curves(curves: dict[str, Sequence[float]], path: Path, ylabel: str) -> Path:
    """One line per network over epochs (e.g. test error of one pass, in %)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


@_figure
def line_panels(xs: Sequence[float], panels: dict[str, dict[str, Sequence]], path: Path,
                xlabel: str, ylabel: str, percent: bool = True) -> Path:
    """One panel per entry of ``panels``, one line per series against ``xs`` (None values are
    left out; a series named "... without ..." is dotted, "Method 1" dashed), e.g. paper 003's
    Fig. 6 (accuracy against the stream length)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
        for label, values in series.items():
            pts = [(x, 100 * v if percent else v) for x, v in zip(xs, values, strict=True)
                   if v is not None]
            if pts:
                style = ":" if "without" in label else "--" if "Method 1" in label else "-"
                ax.plot(*zip(*pts, strict=True), ls=style, marker="o" if style != ":" else None,
                        label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


@_figure
def labelled_scatter(points: dict[str, tuple[float, dict[str, float | None]]], path: Path,
                     xlabel: str) -> Path:
    """One panel per measure: each labelled point at ``x`` (log scale) against that measure
    (None: left out; a measure with no value is no panel), e.g. accuracy and OoD AUROC against
    the energy of an inference."""
    measures = [m for m in next(iter(points.values()))[1]
                if any(ys[m] is not None for _, ys in points.values())]
    fig, axes = plt.subplots(1, len(measures), figsize=(6.0 * len(measures), 4.2),
                             squeeze=False)
    for ax, measure in zip(axes[0], measures, strict=True):
        for i, (label, (x, ys)) in enumerate(points.items()):
            if ys[measure] is None:
                continue
            ax.scatter(x, ys[measure], color=f"C{i % 10}", label=label)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(measure, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _save(fig, path)
