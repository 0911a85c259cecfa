"""The report of ``synsample evaluate``: every metric for one network and method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from synsample.checkpoint import versions
from synsample.io import write_json, write_text
from synsample.report import plots
from synsample.report.cost_section import cost_lines
from synsample.report.markdown import pct, table


def write_evaluation(out: Path, result: dict[str, Any], in_scores: torch.Tensor,
                     ood_scores: dict[str, torch.Tensor]) -> None:
    """``evaluate``'s report into ``out``: ``report.md``, ``metrics.json`` and figures
    (reliability, score histograms, ROC curves, risk-coverage, conformal set sizes).

    Args:
        out: the report folder.
        result: [`synsample.evaluate.evaluate_model`][synsample.evaluate.evaluate_model]'s metrics
            with the checkpoint's facts.
        in_scores: the test items' uncertainty scores (``result["score"]``).
        ood_scores: each OoD set's scores.
    """
    figs = out / "figures"
    score = result["score"]
    rel = plots.reliability_diagram(result["reliability"], figs / "reliability.png",
                                    "reliability of the mean probabilities")
    sweep = plots.ratio_sweep(result["ratios"], figs / "uncertainty-ratios.png", score)
    hist = plots.score_histograms({"in-distribution": in_scores, **ood_scores},
                                  figs / "ood-scores.png", score)
    sel = result["selective"]
    rc = plots.risk_coverage(sel["curve"], figs / "risk-coverage.png", score)
    write_json(out / "metrics.json", {**result, "versions": versions()})
    s, cal = result["summary"], result["calibration"]
    at_half = next(r for r in result["ratios"] if abs(r["T"] - 0.5) < 1e-9)
    md = [
        f"# Evaluation of `{result['checkpoint']}` with {result['method']} "
        f"({result['precision']} precision)", "",
        f"{result['dataset']} test set, {result['items']} items; {result['samples']} passes, "
        f"{result['mode']} mode, seed {result['seed']}.", "",
        "## Accuracy and calibration", "",
        table(["first choice", "top-2", "one pass"],
              [[pct(s["accuracy"], 2), pct(s["top2_accuracy"], 2),
                pct(s["single_pass_accuracy"])]]), "",
        "Calibration of the mean class probabilities and of the vote shares (votes / K):", "",
        table(["probabilities", "accuracy", "NLL (nats)", "Brier", "ECE (15 bins)", "L2 ECE",
               "MCE", "class-wise ECE", "adaptive ECE"],
              [[name, pct(c["accuracy"], 2), f"{c['nll']:.4f}", f"{c['brier']:.4f}",
                f"{c['ece']:.4f}", _f(c.get("l2_ece")), _f(c.get("mce")),
                _f(c.get("classwise_ece")), f"{c['adaptive_ece']:.4f}"]
               for name, c in (("mean probabilities", cal),
                               ("vote shares", result.get("calibration_votes")))
               if c is not None]), "",
        f"![reliability]({rel.relative_to(out)})", "",
        *_recalibration_lines(result.get("recalibration")),
        f"Per true class (mean probabilities; mean {score}):", "",
        table(["class", "items", "accuracy", f"mean {score}", "ECE"],
              [[r["class"], r["items"], pct(r["accuracy"], 2), _f(r["mean_score"]), _f(r["ece"])]
               for r in result.get("per_class", [])]), "",
        "## Uncertainty scores (mean over items; higher is more uncertain)", "",
        table(["score", "correct items", "incorrect items"],
              [[k, _f(v["correct"]), _f(v["incorrect"])]
               for k, v in result["mean_scores"].items()]), "",
        f"## Uncertainty ratios ({score})", "",
        "An item is uncertain when its score is at or above u_T = u_min + T (u_max - u_min). "
        f"At T = 0.5: R_cc = {_f(at_half['R_cc'])}, R_iu = {_f(at_half['R_iu'])}, "
        f"UA = {_f(at_half['UA'])} (n_cc {at_half['n_cc']}, n_cu {at_half['n_cu']}, "
        f"n_ic {at_half['n_ic']}, n_iu {at_half['n_iu']}).", "",
        f"![uncertainty ratios]({sweep.relative_to(out)})", "",
        f"## Selective prediction ({score})", "",
        "Items are accepted from the least uncertain; the selective risk is the error rate among "
        "the accepted items, the generalized risk the accepted errors over all items (tied "
        "scores are accepted together).", "",
        table(["AURC", "AUGRC",
               *(f"risk at {100 * float(c):g}% coverage" for c in sel["risk_at_coverage"]),
               *(f"coverage at {100 * float(r):g}% risk" for r in sel["coverage_at_risk"])],
              [[f"{sel['aurc']:.4f}", f"{sel['augrc']:.4f}",
                *(pct(v, 2) for v in sel["risk_at_coverage"].values()),
                *(pct(v, 2) for v in sel["coverage_at_risk"].values())]]), "",
        f"![risk-coverage]({rc.relative_to(out)})", "",
        *_conformal_lines(result.get("conformal"), out),
        "## Out-of-distribution detection (OoD is the positive class)", ""]
    rows = []
    for name, o in result["ood"].items():
        m = o["by_score"][score]
        rule = o["paper_004_rule"]
        best = max(o["by_score"].items(), key=lambda kv: kv[1]["auroc"])
        rows.append([name, o["items"], f"{m['auroc']:.4f}", f"{m['aupr_in']:.4f}",
                     f"{m['aupr_out']:.4f}", f"{m['fpr_at_95_tpr']:.4f}",
                     pct(rule["detection_rate"], 2), f"{best[0]} ({best[1]['auroc']:.4f})"])
    md += [table(["OoD set", "items", f"AUROC ({score})", "AUPR-in", "AUPR-out", "FPR@95TPR",
                  "paper 004 rule: detected", "best score (AUROC)"], rows), ""]
    if result["ood"]:
        rule = next(iter(result["ood"].values()))["paper_004_rule"]
        md += [f"Paper 004's rule, as read here: {rule['rule']} (the per-pass max softmax "
               f"probability, 1/100 resolution); it rejects "
               f"{pct(rule['false_rejection_rate'], 2)} of the in-distribution test items.", ""]
        readings = {name: o["paper_004_rule"].get("readings", {})
                    for name, o in result["ood"].items()}
        names = list(next(iter(readings.values()), {}))
        if names:
            first = next(iter(readings.values()))
            md += ["The paper's sentence reads two ways: every pass unsure (`all-passes`, the "
                   "99% quantile) or at least about 1% of the passes unsure (`any-percent`, the "
                   "1% quantile). Detection on each OoD set and rejection of the "
                   "in-distribution test items under each:", "",
                   table(["reading", "in-distribution rejected",
                          *(f"{name} detected" for name in readings)],
                         [[r, pct(first[r]["false_rejection_rate"], 2),
                           *(pct(readings[name][r]["detection_rate"], 2) for name in readings)]
                          for r in names]), ""]
    for name, why in result["ood_skipped"].items():
        md += [f"- {name}: skipped ({why})"]
    md += ["", f"![OoD scores]({hist.relative_to(out)})", ""]
    if "cost" in result:
        md += cost_lines(result["cost"])
    md += [f"Versions: {', '.join(f'{k} {v}' for k, v in versions().items())}.", ""]
    write_text(out / "report.md", "\n".join(md))


def _recalibration_lines(recal: dict[str, Any] | None) -> list[str]:
    if not recal:
        return []
    head = ["## Recalibration (temperature scaling)", ""]
    if "skipped" in recal:
        return [*head, f"Not done: {recal['skipped']}.", ""]
    items = next(iter(recal.values()))["calibration_items"]
    label = {"vote_shares": "vote shares (Jeffreys-smoothed)"}
    rows = [[label.get(name, name.replace("_", " ")), f"{r['temperature']:.3f}", when,
             pct(c["accuracy"], 2),
             f"{c['nll']:.4f}", f"{c['brier']:.4f}", f"{c['ece']:.4f}", f"{c['mce']:.4f}",
             f"{c['adaptive_ece']:.4f}"]
            for name, r in recal.items() for when, c in (("before", r["before"]),
                                                          ("after", r["after"]))]
    return [*head, f"One temperature T, fitted on {items} held-out training items by their "
            "NLL, applied as softmax(log p / T) to the test items (vote shares "
            "Jeffreys-smoothed first):", "",
            table(["probabilities", "T", "", "accuracy", "NLL", "Brier", "ECE", "MCE",
                   "adaptive ECE"], rows), ""]


def _conformal_lines(conf: dict[str, Any] | None, out: Path) -> list[str]:
    if not conf:
        return []
    head = ["## Conformal prediction sets", ""]
    if "skipped" in conf:
        return [*head, f"Not done: {conf['skipped']}.", ""]
    first = next(iter(conf.values()))
    oods = list(next(iter(next(iter(first["by_score"].values())).values()))["ood"])
    rows = []
    for reading, c in conf.items():
        for kind, per_alpha in c["by_score"].items():
            for alpha, e in per_alpha.items():
                t = e["test"]
                rows.append([reading.replace("_", " "), kind, alpha, pct(t["coverage"], 2),
                             f"{t['mean_size']:.2f}", pct(t["singleton"], 1),
                             pct(t["empty"], 1), pct(t["worst_class_coverage"], 1),
                             *(_ood_sets(e["ood"][name]) for name in oods)])
    lines = [*head, f"Split-conformal sets calibrated on {first['calibration_items']} held-out "
             "training items: on exchangeable items a set holds the true class with probability "
             "at least 1 - alpha (at most 1 - alpha + 1/(n+1)). Test coverage and set size, and "
             "the mean set size on each OoD set (its coverage where its items keep a class):", "",
             table(["probabilities", "score", "alpha", "coverage", "mean size", "one class",
                    "empty", "worst class", *(f"{name}: size" for name in oods)], rows), ""]
    alphas = list(next(iter(first["by_score"].values())))
    kind = "aps" if "aps" in first["by_score"] else next(iter(first["by_score"]))
    entry = first["by_score"][kind][alphas[-1]]
    fig = plots.set_sizes({"test": entry["test"]["size_counts"],
                           **{k: v["size_counts"] for k, v in entry["ood"].items()}},
                          out / "figures" / "conformal-set-sizes.png",
                          f"{kind.upper()} sets at alpha {alphas[-1]}, "
                          f"{next(iter(conf)).replace('_', ' ')}")
    return [*lines, f"![conformal set sizes]({fig.relative_to(out)})", ""]


def _ood_sets(m: dict[str, Any]) -> str:
    size = f"{m['mean_size']:.2f}"
    return size if m["coverage"] is None else f"{size} (covers {pct(m['coverage'], 1)})"


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"
