"""The scANN run report: Table I beside the paper's, and per row the figures of paper 000."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from synsample import data, metrics
from synsample.checkpoint import load_deterministic, versions
from synsample.io import read_json, write_json, write_text
from synsample.prediction import Prediction
from synsample.report import plots
from synsample.report.cost_section import cost_lines
from synsample.report.markdown import pct, signed, table, text_table

PRECISION_LABEL = {"full": "full precision", "8": "8-bit coins", "4": "4-bit coins"}


def _label(precision: str) -> str:
    return PRECISION_LABEL.get(precision, f"{precision}-bit coins")


def row_figures(slug: str, folder: Path, classes: Sequence[str], labels: torch.Tensor,
                det_pred: torch.Tensor | None, preds: dict[str, Prediction],
                images: torch.Tensor, deterministic: float | None, method: str = "scANN",
                reference: str = "deterministic") -> dict[str, str]:
    """Write a row's figures into ``folder / "figures"``; return their paths relative to
    ``folder``. ``det_pred``: the reference predictions (the deterministic network's, or one
    sampled pass of a network that always samples), titled ``reference``."""
    figs = folder / "figures"
    c = len(classes)
    main_precision = next(iter(preds))
    main = preds[main_precision]
    first = main.first_choice()
    out = {}
    for p, pr in preds.items():
        mats, titles = [], []
        if det_pred is not None and p == main_precision:
            mats.append(metrics.confusion_matrix(labels, det_pred, c))
            titles.append(reference)
        fc, sc = pr.first_choice(), pr.second_choice()
        mats += [metrics.confusion_matrix(labels, fc, c), metrics.confusion_matrix(labels, sc, c)]
        titles += [f"{method} first choice ({_label(p)})",
                   f"second choice ({int((sc >= 0).sum())} items have one)"]
        key = "confusion" if p == main_precision else f"confusion_{p}"
        out[key] = plots.confusion_matrices(mats, titles, classes, figs / f"{slug}-{key}.png")
    curves = {_label(p): pr.accuracy_vs_samples(labels) for p, pr in preds.items()}
    out["accuracy_vs_samples"] = plots.accuracy_curves(curves, deterministic,
                                                       figs / f"{slug}-accuracy-vs-samples.png")
    wrong = torch.nonzero(first != labels)[:, 0]
    if len(wrong):
        # the least confident mistakes first: where the second choice matters most
        order = wrong[torch.argsort(main.vote_entropy()[wrong], descending=True)][:18]
        out["misclassified"] = plots.vote_examples(images[order], labels[order],
                                                   main.votes[order], classes,
                                                   figs / f"{slug}-misclassified.png")
    out["entropy"] = plots.entropy_histograms(
        main.vote_entropy(), first == labels, math.log2(c), figs / f"{slug}-entropy.png",
        title=f"vote entropy, {_label(main_precision)}")
    return {k: str(Path(v).relative_to(folder)) for k, v in out.items()}


def precision_table(summaries: dict[str, dict[str, Any]], paper: dict[str, float] | None) -> str:
    """The Markdown table of a row's precisions: first and second choice, top-2, one pass,
    entropy and information (eqs. 4-5), random bits and time, beside the paper's accuracy.

    Args:
        summaries: [`synsample.metrics.summarize`][synsample.metrics.summarize] per precision.
        paper: the paper's accuracy (%) per precision, or None.

    Returns:
        the table.
    """
    adaptive = any(s.get("mean_passes_per_item", s["samples"]) < s["samples"]
                   for s in summaries.values())
    rows = []
    for p, s in summaries.items():
        ref = paper.get(p) if paper else None
        rows.append([_label(p), pct(s["accuracy"], 2), "-" if ref is None else f"{ref:.1f}%",
                     signed(None if ref is None else 100 * s["accuracy"] - ref, 2),
                     pct(s["second_choice_accuracy"], 1), pct(s["top2_accuracy"], 1),
                     pct(s["single_pass_accuracy"], 1), f"{s['mean_entropy']:.3f}",
                     f"{s['mean_information']:.3f}", f"{s['random_bits'] / 1e9:.2f} G",
                     f"{s['sampling_seconds']:.0f} s"]
                    + ([f"{s['mean_passes_per_item']:.0f}"] if adaptive else []))
    return table(["coins", "first choice", "paper", "diff (pts)", "second choice", "top-2",
                  "one pass", "mean H (bits)", "mean I (bits)", "random bits", "time"]
                 + (["passes per item (adaptive)"] if adaptive else []), rows)


def entropy_table(summaries: dict[str, dict[str, Any]]) -> str:
    """The Markdown table of vote entropy (eq. 4) of correct and incorrect items per
    precision, and how often high entropy flags an error.

    Args:
        summaries: [`synsample.metrics.summarize`][synsample.metrics.summarize] per precision.

    Returns:
        the table.
    """
    rows = [[_label(p), f"{s['mean_entropy_correct']:.3f}" if s["mean_entropy_correct"] is not None
             else "-", f"{s['mean_entropy_incorrect']:.3f}" if s["mean_entropy_incorrect"]
             is not None else "-", s["high_entropy_items"], pct(s["error_rate_high_entropy"]),
             pct(s["second_choice_right_when_first_wrong"])]
            for p, s in summaries.items()]
    return table(["coins", "mean H correct", "mean H incorrect", "items with H >= log2(C)/2",
                  "errors among them", "2nd choice right when 1st wrong"], rows)


def write_table1(cfg, rows: list[dict[str, Any]], jobs: Path
                 ) -> dict[str, Any]:
    """Write ``report.md``, ``metrics.json`` and the figures into ``cfg.out``; print nothing."""
    out = cfg.out
    sections, metric_rows, summary_rows = [], [], []
    for row in rows:
        ds, arch = row["dataset"], row["arch"]
        slug = f"{ds}-{arch}"
        train_res = row["train"]
        det = load_deterministic(jobs / row["train_job"])
        labels = det["labels"]
        preds = {p: Prediction.load(jobs / job / "prediction.safetensors")
                 for p, job in row["sample_jobs"].items()}
        test = data.load(ds, "test", path=cfg.data_path)
        images = test.images[: len(labels)]
        limit_labels = labels[: preds[next(iter(preds))].num_items]
        figs = row_figures(slug, out, train_res["classes"], limit_labels,
                           det["predicted"][: len(limit_labels)], preds,
                           images, train_res["deterministic_accuracy"])
        paper = row["paper"]
        det_acc = train_res["deterministic_accuracy"]
        summaries = row["sampled"]
        metric_rows.append({
            "dataset": ds, "arch": arch, "network": row["network"], "epochs": train_res["epochs"],
            "paper_epochs": 100, "samples": cfg.samples, "mode": cfg.mode, "seed": cfg.seed,
            "deterministic_accuracy": det_acc,
            "scann_accuracy": {p: s["accuracy"] for p, s in summaries.items()},
            "paper": paper,
            "difference_points": None if paper is None else {
                "deterministic": 100 * det_acc - paper["deterministic"],
                **{p: 100 * s["accuracy"] - paper[p] for p, s in summaries.items() if p in paper}},
            "sampled": summaries, "train_seconds": train_res["train_seconds"],
            "figures": figs})
        cells = [f"{ds} {row['network']}",
                 _vs(det_acc, paper and paper["deterministic"])]
        cells += [_vs(summaries[p]["accuracy"], paper and paper.get(p)) for p in summaries]
        summary_rows.append(cells)
        trained = read_json(jobs / row["train_job"] / "config.json")  # the job's TrainConfig
        sections.append(_row_section(ds, row, det_acc, train_res, summaries, paper, figs,
                                     trained["dropout"]))
    header = ["row", "standard"] + [f"scANN {_label(p)}" for p in cfg.precisions]
    result = {"experiment": "scann-table1", "rows": metric_rows,
              "config": {**asdict(cfg), "out": str(cfg.out)}, "versions": versions(),
              "machine": {"platform": platform.platform(), "threads": torch.get_num_threads()},
              "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(out / "metrics.json", result)
    md = [
        "# scANN, Table I of paper 000 (Aimone, Severa, Smith: Synaptic Sampling of Neural "
        "Networks)", "",
        f"{cfg.samples} sampled passes per test item, {cfg.mode} sampling mode, seed {cfg.seed}. "
        "Each cell: ours (paper, difference in points). Coins: full = float32 uniform compared "
        "with |w|; 8- and 4-bit = |w| rounded to the nearest level k/2^b, k < 2^b, compared with "
        "a b-bit random number (`synsample.devices.QuantizedCoin`).", "",
        table(header, summary_rows), "",
        "Epochs: the paper trains 100; rows here say how many were trained, and at which "
        "dropout rate after the hidden layer (the paper gives none). Numbers are measured by "
        "this run; the paper's are copied from its Table I.", "",
        *sections,
        "## Run", "",
        f"- versions: {', '.join(f'{k} {v}' for k, v in versions().items())}",
        f"- machine: {platform.platform()}, {torch.get_num_threads()} torch threads",
        f"- jobs: `{jobs}` (cached by config hash; a re-run skips finished jobs)",
        f"- config: `{ {k: v for k, v in asdict(cfg).items() if k != 'out'} }`", ""]
    write_text(out / "report.md", "\n".join(md))
    result["terminal_table"] = text_table(header, summary_rows)
    return result


def _vs(ours: float, paper: float | None) -> str:
    if paper is None:
        return pct(ours, 2)
    return f"{100 * ours:.2f}% ({paper:.1f}, {100 * ours - paper:+.1f})"


def _row_section(ds: str, row: dict[str, Any], det_acc: float, train_res: dict[str, Any],
                 summaries: dict[str, dict[str, Any]], paper: dict[str, float] | None,
                 figs: dict[str, str], dropout: float) -> str:
    hist = train_res["history"]
    lines = [
        f"## {ds}, {row['network']}", "",
        f"Trained {train_res['epochs']} epochs (paper: 100) at dropout {dropout:g} in "
        f"{train_res['train_seconds']:.0f} s; "
        f"final training loss {hist[-1]['loss']:.4f}. Deterministic test accuracy "
        f"**{pct(det_acc, 2)}**" + (f" (paper {paper['deterministic']:.1f}%)." if paper else "."),
        "", precision_table(summaries, paper), "",
        "Second choice: the class with the second most votes (paper 000, II.A). One pass: "
        "mean accuracy of a single sampled network. H: vote entropy (eq. 4), I: information "
        "(eq. 5), both in bits. Random bits: coins drawn by the device model over all passes.",
        "", entropy_table(summaries), "",
        f"![confusion matrices]({figs['confusion']})", "",
        *[f"![confusion matrices, {k[10:]}-bit coins]({v})\n" for k, v in figs.items()
          if k.startswith("confusion_")],
        f"![accuracy versus samples]({figs['accuracy_vs_samples']})", "",
        f"![vote entropy]({figs['entropy']})", ""]
    if "misclassified" in figs:
        lines += ["Misclassified test items with their vote shares (true class in black):", "",
                  f"![misclassified]({figs['misclassified']})", ""]
    return "\n".join(lines)


def write_sample_report(out: Path, checkpoint_dir: Path, ck_config: dict[str, Any],
                        precision: str, pred: Prediction, test: data.Dataset,
                        det_pred: torch.Tensor, reference: str = "deterministic network",
                        cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report of ``synsample sample``: one trained network sampled at one precision.
    ``det_pred``: the reference predictions, named ``reference`` (for a network that always
    samples, such as an NSM, one sampled pass); ``cost``:
    [`synsample.hardware.measure`][synsample.hardware.measure]'s
    result, reported when given."""
    labels = test.labels
    summary = metrics.summarize(pred, labels)
    det_acc = metrics.accuracy(det_pred, labels)
    slug = f"{ck_config['dataset']}-{ck_config['arch']}-{precision}"
    figs = row_figures(slug, out, test.classes, labels, det_pred, {precision: pred}, test.images,
                       det_acc, method=str(pred.info.get("method", "sampled")),
                       reference=reference)
    pred.save(out / "prediction.safetensors")
    result = {"checkpoint": str(checkpoint_dir), "dataset": ck_config["dataset"],
              "arch": ck_config["arch"], "epochs": len(ck_config.get("history", [])),
              "method": pred.info.get("method"), "precision": precision,
              "deterministic_accuracy": det_acc, "reference": reference, "sampled": summary,
              "figures": figs, **({"cost": cost} if cost is not None else {}),
              "versions": versions()}
    write_json(out / "metrics.json", result)
    md = [f"# {result['method']} sampling of `{checkpoint_dir}`", "",
          f"{ck_config['dataset']} test set ({len(labels)} items), {ck_config['arch']} trained "
          f"{result['epochs']} epochs; {pred.samples} passes, {pred.mode} mode, seed {pred.seed}."
          f" Accuracy of the {reference}: **{pct(det_acc, 2)}**.", "",
          precision_table({precision: summary}, None), "", entropy_table({precision: summary}),
          "", f"![confusion matrices]({figs['confusion']})", "",
          f"![accuracy versus samples]({figs['accuracy_vs_samples']})", "",
          f"![vote entropy]({figs['entropy']})", ""]
    if "misclassified" in figs:
        md += [f"![misclassified]({figs['misclassified']})", ""]
    if cost is not None:
        md += cost_lines(cost)
    write_text(out / "report.md", "\n".join(md))
    return result
