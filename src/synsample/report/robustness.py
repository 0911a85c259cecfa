"""The robustness report: accuracy, entropy and OoD AUROC against each device non-ideality,
and accuracy over precision x number of samples, with figures."""

from __future__ import annotations

from typing import Any

from synsample.checkpoint import versions
from synsample.io import write_json, write_text
from synsample.report import plots
from synsample.report.markdown import table, text_table

KINDS = {"bias": "bias of every coin (added to P(1))",
         "spread": "device-to-device spread (std of a per-device offset of P(1))",
         "stuck": "stuck devices (fraction; half at 0, half at 1)",
         "correlation": "correlated successive bits (lag-1 autocorrelation of each device)",
         "drift": "drift of P(1) per pass (after K passes: K x drift)"}


def _p(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _cell(point: dict[str, Any], key: str, scale: float = 100.0, digits: int = 2) -> str:
    """A point's value, with the standard deviation between device draws when it has one."""
    value, std = point[key], point.get(f"{key}_std")
    if value is None:
        return "-"
    text = f"{scale * value:.{digits}f}"
    return text if std is None else f"{text} ± {scale * std:.{digits}f}"


def catch_up(grid: dict[str, Any], reference_k: int) -> dict[str, int | None]:
    """For each precision, the first K whose accuracy reaches full precision's at
    ``reference_k`` passes (None: not within the recorded K)."""
    target = grid["full"]["accuracy_vs_samples"][str(reference_k)]
    out = {}
    for precision, r in grid.items():
        curve = sorted((int(k), a) for k, a in r["accuracy_vs_samples"].items())
        out[precision] = next((k for k, a in curve if a >= target), None)
    return out


def write(cfg, sweeps: dict[str, Any], grids: dict[str, Any], network: str) -> dict[str, Any]:
    """The robustness report of ``cfg.method`` on ``network`` (its description): ``report.md``,
    ``metrics.json`` and figures in ``cfg.out``."""
    figs = cfg.out / "figures"

    trained = getattr(cfg, "sampling_aware", None)
    trained = "" if trained is None else (f" trained through `{trained}` coins (sampling-aware, "
                                          f"issue 20)")
    md = [f"{cfg.method}, {network}{trained}, on each dataset, "
          f"{cfg.samples} passes "
          f"({cfg.mode} mode), seed {cfg.seed}. Coins: `NonIdealCoin`s (bias, spread, stuck "
          "devices) or `TemporalCoin`s (correlation, drift) around an ideal coin, one device per "
          "weight; time is the pass index. OoD AUROC: the vote entropy of the test set against "
          "the other dataset (MNIST against Fashion-MNIST and back). Percentages. Spread and "
          f"stuck devices are drawn at random: each of their points is the mean over "
          f"{cfg.device_draws} draws of the devices, ± the standard deviation between draws.",
          ""]
    terminal = []
    skipped = [k for k in cfg.nonidealities if not all(k in s for s in sweeps.values())]
    if skipped:
        md += [f"Not swept for {cfg.method}: {', '.join(skipped)} (its coins are drawn per item, "
               "so its bits have no time axis).", ""]
    for kind, label in KINDS.items():
        if kind not in cfg.nonidealities or kind in skipped:
            continue
        mags = list(cfg.nonidealities[kind])
        header = ["dataset", "measure", *(f"{m:g}" for m in mags)]
        rows = []
        for ds, sweep in sweeps.items():
            pts = sweep[kind]
            rows += [[ds, "accuracy", *(_cell(r, "accuracy") for r in pts)],
                     [ds, "mean vote entropy (bits)",
                      *(_cell(r, "mean_entropy", 1.0, 3) for r in pts)],
                     [ds, "OoD AUROC", *(_cell(r, "auroc") for r in pts)]]
        fig = plots.line_panels(mags, {
            "accuracy (%)": {ds: [r["accuracy"] for r in s[kind]] for ds, s in sweeps.items()},
            "OoD AUROC (%)": {ds: [r["auroc"] for r in s[kind]] for ds, s in sweeps.items()}},
            figs / f"{kind}.png", label, "")
        md += [f"## {label[0].upper()}{label[1:]}", "", table(header, rows), "",
               f"![{kind}]({fig.relative_to(cfg.out)})", ""]
        terminal += [[kind, *r] for r in rows if r[1] == "accuracy"]
    ks = sorted(cfg.sample_counts)
    md += ["## Precision against the number of samples (paper 000, section IV)", "",
           f"Accuracy after K passes, one run per precision; the last column is the first K "
           f"at which a precision reaches the full-precision accuracy at K = {cfg.reference_k} "
           "(- when it does not within the recorded K).", ""]
    grid_rows = []
    header = ["bits", *(f"K = {k}" for k in ks), f"K to match full @ {cfg.reference_k}"]
    for ds, grid in grids.items():
        reach = catch_up(grid, cfg.reference_k)
        rows = [[p, *(_p(grid[p]["accuracy_vs_samples"].get(str(k))) for k in ks),
                 reach[p] or "-"] for p in grid]
        md += [f"### {ds}", "", table(header, rows), ""]
        grid_rows += [[ds, *r] for r in rows]
    fig = plots.line_panels(ks, {ds: {f"{p} bits": [g[p]["accuracy_vs_samples"].get(str(k))
                                                    for k in ks] for p in g}
                                 for ds, g in grids.items()},
                            figs / "precision-vs-samples.png", "passes K", "accuracy (%)")
    md += [f"![precision against samples]({fig.relative_to(cfg.out)})", ""]
    result = {"experiment": "robustness", "method": cfg.method,
              "sampling_aware": getattr(cfg, "sampling_aware", None), "samples": cfg.samples,
              "seed": cfg.seed, "mode": cfg.mode, "nonidealities": cfg.nonidealities,
              "sweeps": sweeps,
              "precision_grid": grids,
              "catch_up": {ds: catch_up(g, cfg.reference_k) for ds, g in grids.items()},
              "versions": versions()}
    write_json(cfg.out / "metrics.json", result)
    write_text(cfg.out / "report.md", "\n".join(
        [f"# Robustness of {cfg.method} to imperfect devices, and precision against samples",
         "", *md]))
    if terminal:
        width = max(len(v) for v in cfg.nonidealities.values())
        result["terminal_table"] = text_table(
            ["non-ideality", "dataset", "measure", *(f"#{i + 1}" for i in range(width))],
            [r + ["-"] * (width + 3 - len(r)) for r in terminal])
    else:  # nothing swept: the precision x K grid
        result["terminal_table"] = text_table(["dataset", *header], grid_rows)
    return result
