"""report/plots.py: every figure function writes a PNG where asked (folders created), returns
its path and closes its figure; the inputs each one promises to take (empty groups, None
values, constant scores) are drawn, not refused; what a figure promises to show is checked on
its pixels where that is cheap (panels side by side, wrong classes in red)."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from synsample.report import plots
from tests.report.inputs import assert_png, png_size

CLASSES = ["zero", "one", "two"]


def _bins():
    return [{"low": b / 5, "high": (b + 1) / 5, "count": c, "confidence": conf, "accuracy": acc}
            for b, (c, conf, acc) in enumerate([(0, None, None), (3, 0.3, 0.33), (0, None, None),
                                                (5, 0.7, 0.6), (12, 0.95, 0.9)])]


def _synthetic_images(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g)


#: one call per figure function, on small synthetic inputs
CALLS = {
    "confusion_matrices": lambda p: plots.confusion_matrices(
        [torch.tensor([[5, 1, 0], [0, 4, 2], [1, 0, 6]])] * 2, ["first", "second"], CLASSES, p),
    "accuracy_curves": lambda p: plots.accuracy_curves(
        {"full": {1: 0.6, 10: 0.8, 100: 0.85}, "4-bit": {1: 0.5, 100: 0.8}}, 0.9, p),
    "vote_examples": lambda p: plots.vote_examples(
        _synthetic_images(4), torch.tensor([0, 1, 2, 0]),
        torch.tensor([[8, 2, 0], [1, 9, 0], [3, 3, 4], [0, 0, 10]]), CLASSES, p, columns=3),
    "entropy_histograms": lambda p: plots.entropy_histograms(
        torch.tensor([0.0, 0.1, 0.5, 1.2, 1.5]), torch.tensor([True, True, False, False, True]),
        np.log2(3), p, title="synthetic"),
    "reliability_diagram": lambda p: plots.reliability_diagram(_bins(), p, "synthetic"),
    "risk_coverage": lambda p: plots.risk_coverage(
        {"coverage": [0.25, 0.5, 1.0], "risk": [0.0, 0.1, 0.2]}, p, "vote-entropy"),
    "set_sizes": lambda p: plots.set_sizes({"test": [0, 80, 15, 5], "noise": [10, 20, 30, 40]},
                                           p, "APS"),
    "ratio_sweep": lambda p: plots.ratio_sweep(
        [{"T": t, "R_cc": 0.9, "R_iu": 0.5 * t, "UA": 0.8} for t in (0.0, 0.5, 1.0)], p,
        "vote-entropy"),
    "score_histograms": lambda p: plots.score_histograms(
        {"in": torch.tensor([0.0, 0.1, 0.2]), "out": torch.tensor([0.5, 0.9, 1.0])}, p, "H"),
    "holdout_curves": lambda p: plots.holdout_curves(
        [0.0, 0.5, 1.0], {"Out entropy": [0.1, 0.5, 1.0], "In entropy": [0.1, 0.1, 0.1]}, p),
    "percentile_traces": lambda p: plots.percentile_traces(
        {"NSM": [[0, -1.0, 0.0, 1.0], [1, -0.9, 0.1, 0.8]]}, p),
    "training_curves": lambda p: plots.training_curves({"nsm": [5.0, 3.0, 2.0]}, p, "error"),
    "line_panels": lambda p: plots.line_panels(
        [1, 2, 3], {"panel": {"a": [0.5, 0.6, 0.7]}}, p, "x", "y"),
    "labelled_scatter": lambda p: plots.labelled_scatter(
        {"a": (10.0, {"acc": 0.9, "auroc": 0.8}), "b": (100.0, {"acc": 0.95, "auroc": 0.7})},
        p, "nJ"),
}


@pytest.fixture(autouse=True)
def _no_figures_before():
    plt.close("all")
    yield
    plt.close("all")


def test_every_figure_function_is_exercised():
    public = {n for n in vars(plots) if not n.startswith("_") and callable(getattr(plots, n))
              and getattr(getattr(plots, n), "__module__", "") == plots.__name__}
    assert public == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_writes_a_png_where_asked_returns_its_path_and_closes_the_figure(name, tmp_path):
    path = tmp_path / "new" / "folder" / f"{name}.png"
    assert CALLS[name](path) == path
    assert_png(path)
    assert plt.get_fignums() == []
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_an_existing_figure_is_replaced(tmp_path):
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")
    CALLS["training_curves"](path)
    assert_png(path)


def _width(tmp_path, name, fn) -> int:
    return png_size(fn(tmp_path / f"{name}.png"))[0]


def test_confusion_matrices_side_by_side_one_panel_per_matrix(tmp_path):
    mat = torch.tensor([[5, 0, 0], [0, 0, 0], [2, 0, 3]])  # a class without items: row of 0
    one = _width(tmp_path, "one", lambda p: plots.confusion_matrices([mat], ["a"], CLASSES, p))
    three = _width(tmp_path, "three", lambda p: plots.confusion_matrices(
        [mat] * 3, ["a", "b", "c"], CLASSES, p))
    assert 2.5 < three / one < 3.5


def _red_pixels(path) -> int:
    img = mpimg.imread(path)
    return int(((img[..., 0] > 0.8) & (img[..., 1] < 0.35) & (img[..., 2] < 0.35)).sum())


def test_vote_examples_write_wrong_classes_in_red_and_the_true_class_not(tmp_path):
    images, labels = _synthetic_images(2), torch.tensor([0, 1])
    right = plots.vote_examples(images, labels, torch.tensor([[10, 0, 0], [0, 10, 0]]), CLASSES,
                                tmp_path / "right.png", columns=2)
    wrong = plots.vote_examples(images, labels, torch.tensor([[3, 7, 0], [0, 4, 6]]), CLASSES,
                                tmp_path / "wrong.png", columns=2)
    assert _red_pixels(right) == 0
    assert _red_pixels(wrong) > 20


def test_vote_examples_take_no_images_and_items_without_votes(tmp_path):
    assert_png(plots.vote_examples(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long),
                                   torch.zeros(0, 3, dtype=torch.long), CLASSES,
                                   tmp_path / "none.png"))
    assert_png(plots.vote_examples(_synthetic_images(1), torch.tensor([2]),
                                   torch.zeros(1, 3, dtype=torch.long), CLASSES,
                                   tmp_path / "novotes.png"))
    assert plt.get_fignums() == []


def test_entropy_histograms_with_no_incorrect_items(tmp_path):
    """A density of no items is undefined: the empty group is left out, not drawn."""
    assert_png(plots.entropy_histograms(torch.tensor([0.0, 0.2]), torch.tensor([True, True]),
                                        1.0, tmp_path / "h.png"))


def test_reliability_diagram_leaves_out_empty_bins(tmp_path):
    """Empty bins carry None for confidence and accuracy: drawing them would fail."""
    assert_png(plots.reliability_diagram(_bins(), tmp_path / "r.png"))
    empty = [{"low": 0.0, "high": 1.0, "count": 0, "confidence": None, "accuracy": None}]
    assert_png(plots.reliability_diagram(empty, tmp_path / "empty.png"))


def test_ratio_sweep_draws_a_ratio_without_denominator_as_a_gap(tmp_path):
    sweep = [{"T": t, "R_cc": None if t == 1.0 else 0.9, "R_iu": None, "UA": 0.7}
             for t in (0.0, 0.5, 1.0)]
    assert_png(plots.ratio_sweep(sweep, tmp_path / "r.png", "vote-entropy"))


@pytest.mark.parametrize("scores", [
    {"constant": torch.zeros(6)},
    {"rounding below 0": torch.tensor([-1e-12, 0.0, 0.3]), "ood": torch.tensor([0.2, 0.9])}])
def test_score_histograms_take_constant_and_slightly_negative_scores(scores, tmp_path):
    assert_png(plots.score_histograms(scores, tmp_path / "s.png", "mutual information"))


def test_percentile_traces_one_panel_per_network_an_empty_trace_drawn_empty(tmp_path):
    trace = [[s, -1.0 + 0.01 * s, 0.0, 1.0 - 0.01 * s] for s in range(30)]
    one = _width(tmp_path, "one", lambda p: plots.percentile_traces({"NSM": trace}, p))
    two = _width(tmp_path, "two", lambda p: plots.percentile_traces(
        {"NSM": trace, "StNN": []}, p))
    assert 1.6 < two / one < 2.4


def test_line_panels_one_panel_per_entry_none_values_left_out(tmp_path):
    series = {"with SC": [0.9, None, 0.95], "without SC": [None, None, None]}
    one = _width(tmp_path, "one", lambda p: plots.line_panels([1, 2, 3], {"a": series}, p,
                                                              "L", "accuracy (%)"))
    three = _width(tmp_path, "three", lambda p: plots.line_panels(
        [1, 2, 3], {"a": series, "b": series, "c": series}, p, "L", "accuracy (%)"))
    assert 2.5 < three / one < 3.5


def test_labelled_scatter_a_measure_without_any_value_is_no_panel(tmp_path):
    both = {"a": (1.0, {"acc": 0.9, "auroc": 0.8}), "b": (10.0, {"acc": 0.8, "auroc": None})}
    acc_only = {"a": (1.0, {"acc": 0.9, "auroc": None}), "b": (10.0, {"acc": 0.8,
                                                                     "auroc": None})}
    two = _width(tmp_path, "two", lambda p: plots.labelled_scatter(both, p, "nJ"))
    one = _width(tmp_path, "one", lambda p: plots.labelled_scatter(acc_only, p, "nJ"))
    assert one < 0.75 * two


def test_a_figure_that_fails_is_closed_too(tmp_path):
    with pytest.raises(ValueError):
        plots.confusion_matrices([torch.eye(3)] * 2, ["only one title"], CLASSES,
                                 tmp_path / "c.png")
    assert plt.get_fignums() == []
