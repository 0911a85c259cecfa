"""The cross-method report: accuracy, OoD AUROC, energy, random bits and memory of one
inference for every method on one task (``synsample reproduce costs``)."""

from __future__ import annotations

from typing import Any

from synsample.checkpoint import versions
from synsample.io import write_json, write_text
from synsample.report import plots
from synsample.report.markdown import table, text_table

#: how the energy components group in the breakdown table
GROUPS = {"arithmetic": ("mac", "add", "compare", "xnor", "lut"),
          "crossbars": ("crossbar_read", "crossbar_cell", "averaging"),
          "weight reads": ("weight bits read",)}


def _group(component: str) -> str:
    if component.startswith("random bits"):
        return "random bits"
    return next(g for g, members in GROUPS.items() if component in members)


def _auroc(metrics: dict[str, Any], name: str, score: str) -> float | None:
    ood = metrics["ood"].get(name)
    return None if ood is None else ood["by_score"][score]["auroc"]


def _summary(row: dict[str, Any], score: str) -> dict[str, Any]:
    per = row["cost"]["per_inference"]
    groups: dict[str, float] = {}
    for component, pj in per["energy_pj"].items():
        groups[_group(component)] = groups.get(_group(component), 0.0) + pj * 1e-3
    return {"accuracy": row["metrics"]["summary"]["accuracy"],
            "auroc": {name: _auroc(row["metrics"], name, score)
                      for name in ("other", "gaussian-noise")},
            "energy_nj": per["energy_nj"],
            "sample_nj": row["cost"]["per_sample"]["energy_nj"],
            "random_bits": sum(per["random_bits"].values()),
            "memory_kib": row["cost"]["memory_bytes"] / 1024, "groups_nj": groups}


def _p(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def write(cfg, rows: list[dict[str, Any]], score: str) -> dict[str, Any]:
    """The cost table's report: ``report.md``, ``metrics.json`` and figures in ``cfg.out``;
    ``score``: the uncertainty score of the AUROC columns."""
    out = cfg.out
    summaries = [_summary(r, score) for r in rows]
    other = "Fashion-MNIST" if cfg.dataset == "mnist" else "MNIST"
    header = ["method", "randomness", "accuracy %", f"AUROC {other}", "AUROC Gaussian",
              "nJ / inference", "nJ / sample", "random bits / inference", "weights KiB"]
    body = [[r["label"], r["randomness"], _p(s["accuracy"]), _p(s["auroc"]["other"]),
             _p(s["auroc"]["gaussian-noise"]), f"{s['energy_nj']:,.1f}",
             f"{s['sample_nj']:,.2f}", f"{s['random_bits']:,.0f}", f"{s['memory_kib']:,.1f}"]
            for r, s in zip(rows, summaries, strict=True)]
    groups = ["arithmetic", "crossbars", "random bits", "weight reads"]
    breakdown = [[r["label"], r["randomness"],
                  *(f"{s['groups_nj'].get(g, 0.0):,.1f}" for g in groups)]
                 for r, s in zip(rows, summaries, strict=True)]
    fig = plots.labelled_scatter(
        {f"{r['label']} ({r['randomness']})": (s["energy_nj"], {
            "accuracy (%)": 100 * s["accuracy"],
            f"OoD AUROC, {other} (%)": None if s["auroc"]["other"] is None
            else 100 * s["auroc"]["other"]}) for r, s in zip(rows, summaries, strict=True)},
        out / "figures" / "accuracy-vs-energy.png", "energy per inference (nJ)")
    a = cfg.assumptions
    prices = [[k, f"{v:g}", a.sources.get(k, "")] for k, v in a.pj_per_op.items()]
    prices += [[f"random bit ({k})", f"{v:g}", a.sources.get(k, "")]
               for k, v in a.pj_per_random_bit.items()]
    prices += [["weight bit read", f"{a.pj_per_weight_bit_read:.4g}",
                a.sources.get("weight_read", "")]]
    md = ["# Every method on one task: accuracy, uncertainty and cost", "",
          f"{cfg.dataset} test set, {cfg.samples} passes per inference ({cfg.mode} mode for the "
          f"metrics), seed {cfg.seed}. Accuracy: the first choice of the votes. AUROC: "
          f"{score} of the test items against {cfg.ood_items} out-of-distribution items. "
          f"Cost: `synsample.hardware` over {rows[0]['cost']['items']} test items in "
          "independent mode (each inference draws its own, as a device serving one inference "
          f"at a time), priced by the assumption set *{a.name}*; weight memory as each method "
          f"stores its weights (real numbers at {a.float_bits} bits).", "",
          table(header, body), "",
          f"![accuracy and AUROC against energy]({fig.relative_to(out)})", "",
          "## Where the energy goes (nJ per inference)", "",
          table(["method", "randomness", *groups], breakdown), "",
          "Arithmetic: multiply-accumulates, multiply-free adds, comparisons, XNORs and LUT "
          "look-ups; crossbars: sensing, cells and averaging (paper 004, Table 4); weight "
          "reads: every pass of a digital layer reads its weights from SRAM (a crossbar "
          "computes in place). Set `pj_per_weight_bit_read` to 0 to model weights that live in "
          "the devices themselves.", "",
          "## Assumptions (pJ)", "", table(["item", "pJ", "source"], prices), ""]
    result = {"experiment": "costs", "dataset": cfg.dataset, "samples": cfg.samples,
              "seed": cfg.seed, "mode": cfg.mode, "assumptions": a.as_dict(),
              "rows": [{"label": r["label"], "method": r["method"],
                        "randomness": r["randomness"], **s, "cost": r["cost"]}
                       for r, s in zip(rows, summaries, strict=True)],
              "versions": versions()}
    write_json(out / "metrics.json", result)
    write_text(out / "report.md", "\n".join(md))
    result["terminal_table"] = text_table(
        ["method", "randomness", "acc %", f"AUROC {other}", "nJ/inference", "random bits",
         "KiB"], [[b[0], b[1], b[2], b[3], b[5], b[7], b[8]] for b in body])
    return result
