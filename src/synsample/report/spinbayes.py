"""The report of paper 004's MNIST experiments: Tables 1 and 3 beside the paper's, the n-way
ablation, the Q x N sweep and the memory comparison, from the job results alone."""

from __future__ import annotations

from typing import Any

from synsample import papers
from synsample.checkpoint import versions
from synsample.io import write_json, write_text
from synsample.methods import REGISTRY
from synsample.report import plots
from synsample.report.cost_section import cost_lines
from synsample.report.markdown import table, text_table

#: the report's name of each method: its spec's title
NAMES = {name: spec.title for name, spec in REGISTRY.items()}
OOD_NAMES = {"gaussian-noise": "Gaussian", "uniform-noise": "uniform noise",
             "noisy": "noisy MNIST", "fake": "smoothed FakeData",
             "fakedata": "FakeData (torchvision's, i.i.d.)", "other": "Fashion-MNIST"}


def _p(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"


def error(result: dict[str, Any]) -> float:
    """The prediction error of paper 004's Table 1: the mean of the passes' softmax (eq. 4).

    Args:
        result: one method's evaluation.

    Returns:
        the error, a fraction.
    """
    return 1.0 - result["summary"]["mean_probs_accuracy"]


def ratios_at(result: dict[str, Any], t: float) -> dict[str, Any]:
    """The uncertainty ratios (R_cc, R_iu, UA) at the threshold fraction nearest ``t``.

    Args:
        result: one method's evaluation (its ``ratios`` sweep).
        t: the threshold fraction.

    Returns:
        the sweep's entry.
    """
    return min(result["ratios"], key=lambda r: abs(r["T"] - t))


def _table1(cfg, main: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["method", "error", "paper", "R_iu", "paper", "R_cc", "paper", "UA", "paper"]
    rows = []
    for m, r in main.items():
        ref = papers.SPINBAYES_TABLE1.get(m)
        q = ratios_at(r, cfg.ratio_threshold)
        ours = [error(r), q["R_iu"], q["R_cc"], q["UA"]]
        rows.append([NAMES[m], *[c for i, v in enumerate(ours) for c in (
            _p(v), "-" if ref is None else f"{ref[i]:.2f}")]])
    return header, rows


def _ood_table(results: dict[Any, dict[str, Any]], label: str, paper: dict[str, float] | None
               ) -> tuple[list[str], list[list[Any]]]:
    sets = [s for s in OOD_NAMES if any(s in r["ood"] for r in results.values())]
    header = [label, *(f"{OOD_NAMES[s]}: rule / AUROC" for s in sets)]
    rows = [[key if not isinstance(key, str) else NAMES.get(key, key),
             *(f"{_p(r['ood'][s]['paper_004_rule']['detection_rate'], 1)} / "
               f"{r['ood'][s]['by_score']['predictive-entropy']['auroc']:.3f}"
               if s in r["ood"] else "-" for s in sets)] for key, r in results.items()]
    if paper:
        rows.append(["SpinBayes, paper (rule)", *(f"{paper[s]:.2f}" if s in paper else "-"
                                                  for s in sets)])
    return header, rows


def _rule_readings(results: dict[str, dict[str, Any]], paper: dict[str, float]) -> list[str]:
    """Table 3 under both readings of the paper's rule (metrics.ood.RULE_READINGS), with the
    in-distribution test items each rejects, and which reading the paper's numbers fit."""
    sets = [s for s in OOD_NAMES if any(s in r["ood"] for r in results.values())]
    if not sets:
        return []
    readings = list(next(iter(results.values()))["ood"][sets[0]]["paper_004_rule"]["readings"])
    rows, gaps = [], {}
    for reading in readings:
        for m, r in results.items():
            per = {s: r["ood"][s]["paper_004_rule"]["readings"][reading] for s in sets
                   if s in r["ood"]}
            rejected = next(iter(per.values()))["false_rejection_rate"]
            rows.append([reading, NAMES.get(m, m), _p(rejected, 1),
                         *(_p(per[s]["detection_rate"], 1) if s in per else "-" for s in sets)])
            shared = [s for s in per if s in paper]
            if m == "spinbayes" and shared:  # no set the paper reports: nothing to fit
                gaps[reading] = (sum(abs(100 * per[s]["detection_rate"] - paper[s])
                                     for s in shared) / len(shared), rejected)
    rows.append(["paper", "SpinBayes", "not reported",
                 *(f"{paper[s]:.2f}" if s in paper else "-" for s in sets)])
    lines = ["Both readings of the rule (`all-passes`: every pass unsure, the 99% quantile; "
             "`any-percent`: at least about 1% of the passes unsure, the 1% quantile), with the "
             "share of the in-distribution test items each rejects:", "",
             table(["reading", "method", "in-distribution rejected",
                    *(f"{OOD_NAMES[s]} detected" for s in sets)], rows), ""]
    if gaps:
        best = min(gaps, key=lambda k: gaps[k][0])
        lines += [f"The paper's detection rates fit the `{best}` reading (SpinBayes' mean gap "
                  f"to the paper {gaps[best][0]:.1f} points, against "
                  + ", ".join(f"{gaps[k][0]:.1f} for `{k}`" for k in gaps if k != best)
                  + f"); that reading also rejects {_p(gaps[best][1], 1)}% of the "
                  "in-distribution test items, which the paper does not report.", ""]
    return lines


def _sweep(cfg, sweep: dict[str, Any]):
    bits, crossbars = cfg.sweep_bits, cfg.sweep_crossbars
    first = next(iter(sweep.values()))["ood"]
    ood = next(s for s in ("other", "gaussian-noise") if s in first)

    def auroc(q: int, n: int) -> float:
        return sweep[f"{q}x{n}"]["ood"][ood]["by_score"]["predictive-entropy"]["auroc"]

    header = ["Q \\ N", *(str(n) for n in crossbars)]
    err = [[q, *(_p(error(sweep[f"{q}x{n}"])) for n in crossbars)] for q in bits]
    aurocs = [[q, *(f"{auroc(q, n):.3f}" for n in crossbars)] for q in bits]
    panels = {"test error (%)": {f"Q = {q}": [error(sweep[f"{q}x{n}"]) for n in crossbars]
                                 for q in bits},
              f"{OOD_NAMES[ood]} AUROC": {f"Q = {q}": [auroc(q, n) for n in crossbars]
                                          for q in bits}}
    fig = plots.line_panels(list(crossbars), panels,
                            cfg.out / "figures" / "quantization-sweep.png",
                            "crossbars N", "", percent=False)
    return (header, err), (header, aurocs), OOD_NAMES[ood], fig


def _energy(energy: dict[str, Any]) -> list[str]:

    ours = energy["per_inference"]["energy_nj"] * 1e-3
    return [*cost_lines(energy, "## Energy per image (Tables 4 and 5)"),
            "The crossbar, RNG, averaging, adder and comparator energies are Table 4's; BatchNorm "
            "folds into the comparators and the crossbars compute in place (no weight reads).",
            "",
            table(["design", "uJ per image", "random number generators"],
                  [*([k, f"{v[0]:.2f}", v[1]] for k, v in papers.SPINBAYES_TABLE5.items()),
                   ["SpinBayes, ours (counted)", f"{ours:.3f}",
                    "SOT-MTJ arbiter per layer, 3 bits per try"]]), "",
            f"Ours is {ours / papers.SPINBAYES_TABLE5['SpinBayes (paper), SOT-MRAM'][0]:.2f}x the "
            "paper's 0.26 uJ: the paper scales Table 4 with NVSim, whose operation counts it "
            "does not give; the counts above are our stated reading of its circuit.", ""]


def write(cfg, training: dict[str, Any], main: dict[str, Any], ways: dict[int, Any],
          sweep: dict[str, Any], memory: list[dict[str, Any]], energy: dict[str, Any]
          ) -> dict[str, Any]:
    """Paper 004's report into ``cfg.out``: Tables 1 and 3 beside the paper's (both readings
    of its OoD rule), n-way inference, the Q x N sweep, memory and Table 5's energy.

    Args:
        cfg: the experiment's config.
        training: each method's training results.
        main: each method's evaluation.
        ways: SpinBayes' evaluation per n of n-way inference.
        sweep: SpinBayes' evaluation per ``QxN`` (empty: no sweep).
        memory: [`memory_rows`][synsample.experiments.spinbayes.memory_rows]'s rows.
        energy: SpinBayes' energy per image (Table 5).

    Returns:
        ``metrics.json``'s content and the terminal table.
    """
    seconds = sum(t.get("train_seconds", 0.0) for jobs in training.values() for t in jobs)
    md = [f"{cfg.dataset}, LeNet-5 with BatchNorm, {cfg.epochs} epochs of Adam 1e-3 for every "
          f"network (seed {cfg.seed}; {cfg.members} ensemble members from seeds {cfg.seed} to "
          f"{cfg.seed + cfg.members - 1}; {seconds / 60:.0f} min of training on this machine). "
          f"Bayes-by-Backprop: mean-field Gaussian posterior, Gaussian prior N(0, 0.1^2), the "
          f"ELBO. SpinBayes: N = {cfg.crossbars} posterior samples per layer quantized to "
          f"Q = {cfg.bits} bits (eq. 3 with a per-layer gain), one crossbar per layer and pass "
          f"chosen by the SOT-MTJ arbiter, BatchNorm re-calibrated on 20 training batches. "
          f"{cfg.samples} passes per item ({cfg.mode} mode); the prediction is the mean of the "
          f"passes' softmax (eq. 4). Uncertainty: the predictive entropy; R_iu, R_cc and UA at "
          f"the threshold fraction T = {cfg.ratio_threshold} (paper 004 does not give its "
          f"threshold; metrics.json has T = 0 ... 1). Percentages.", "",
          "## Table 1: prediction error and uncertainty (MNIST, LeNet-5)", "",
          table(*_table1(cfg, main)), "",
          "## Table 3: out-of-distribution detection", "",
          "Each cell: the share of OoD items the paper's rule rejects (the 99% quantile of the "
          "passes' maximum probability below 90%), then the AUROC of the predictive entropy. "
          f"{' and '.join(papers.SPINBAYES_NOT_REACHABLE)} are not reachable from these "
          "machines.", "",
          table(*_ood_table(main, "method", papers.SPINBAYES_TABLE3)), "",
          *_rule_readings(main, papers.SPINBAYES_TABLE3),
          "## n-way inference (section 4.4)", "",
          table(*_ood_table(ways, "n", None)), "",
          table(["n", "error", "mean predictive entropy"],
                [[n, _p(error(r)), f"{r['summary']['mean_entropy']:.4f}"]
                 for n, r in ways.items()]), ""]
    if sweep:
        (h, err), (_, auroc), ood_name, fig = _sweep(cfg, sweep)
        md += ["## Quantization sweep: Q bits x N crossbars", "", "Test error (%):", "",
               table(h, err), "", f"{ood_name} AUROC (predictive entropy):", "",
               table(h, auroc), "", f"![sweep]({fig.relative_to(cfg.out)})", ""]
    kinds = list(memory[0]["megabytes"])
    md += ["## Memory (Fig. 7, section 4.3.2)", "",
           "Model size in MB: parameters x bits per parameter (32-bit MC methods; "
           "Bayes-by-Backprop's mean and standard deviation; the ensemble's members; "
           "SpinBayes' N crossbars of Q bits).", "",
           table(["network", "parameters", *kinds],
                 [[r["network"], f"{r['parameters']:,}",
                   *(f"{r['megabytes'][k]:.3f}" for k in kinds)] for r in memory]), "",
           *_energy(energy)]
    result = {"experiment": "spinbayes-mnist", "config": {
        k: str(v) if hasattr(v, "parts") else v for k, v in vars(cfg).items()},
        "main": main, "ways": {str(k): v for k, v in ways.items()}, "sweep": sweep,
        "memory": memory, "energy": energy, "versions": versions()}
    write_json(cfg.out / "metrics.json", result)
    write_text(cfg.out / "report.md", "\n".join(
        ["# SpinBayes and the Bayesian baselines on MNIST (paper 004)", "", *md]))
    result["terminal_table"] = text_table(*_table1(cfg, main))
    return result
