"""The report of Table I with sampling-aware training beside post-hoc conversion (issue 20)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synsample.io import write_json, write_text
from synsample.report.markdown import pct, table, text_table

#: how the trainings are named in the report
LABELS = {"post-hoc": "post-hoc (paper 000)", "sampling-aware": "sampling-aware",
          "sampling-aware-bits": "sampling-aware at {bits} bits"}


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table_rows(rows: list[dict[str, Any]], precisions: tuple[str, ...], bits: str | None
               ) -> list[list[str]]:
    """One line per (row, training): accuracies, entropies, AUROCs, ECE, seconds per epoch."""
    out = []
    for row in rows:
        for training, t in row["trainings"].items():
            sampled, unc = t["sampled"], t["uncertainty"]
            own = sampled[t["uncertainty_precision"]]
            hist = t["train"]["history"]
            label = LABELS[training].format(bits=bits)
            out.append([
                f"{row['dataset']} {row['arch']}", label,
                pct(t["train"]["deterministic_accuracy"], 2),
                *[pct(sampled[p]["accuracy"], 2) if p in sampled else "-" for p in precisions],
                pct(own["single_pass_accuracy"], 1),
                f"{_num(own['mean_entropy_correct'])} / {_num(own['mean_entropy_incorrect'])}",
                _num(unc["entropy_auroc"]), _num(unc.get("ood_auroc")),
                _num(unc["ece_votes"]), _num(unc["ece_mean_softmax"]),
                f"{sum(h['seconds'] for h in hist) / len(hist):.1f}"])
    return out


def write(cfg, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``report.md`` and ``metrics.json`` into ``cfg.out``; returns the metrics (with the
    terminal table)."""
    s = cfg
    out = Path(cfg.out)
    header = ["row", "training", "deterministic",
              *[f"scANN {p}" + ("" if p == "full" else "-bit") for p in s.precisions],
              "one pass", "H correct / incorrect", "entropy AUROC", "OoD AUROC", "ECE votes",
              "ECE softmax", "s / epoch"]
    body = table_rows(rows, tuple(s.precisions), cfg.train_bits)
    result = {"experiment": "scann-table1-sampling-aware", "estimator": cfg.estimator,
              "coin": cfg.coin, "train_bits": cfg.train_bits, "samples": s.samples,
              "seed": s.seed, "mode": s.mode, "limit": s.limit, "rows": rows}
    write_json(out / "metrics.json", result)
    write_text(out / "report.md", "\n".join([
        "# Table I of paper 000: sampling-aware training beside post-hoc conversion", "",
        f"Seed {s.seed}, {s.samples} passes ({s.mode} mode), estimator `{cfg.estimator}` "
        f"(synsample.nn.sampling_aware), sampling-aware networks trained through `{cfg.coin}` "
        f"coins without dropout; the third network of a row is trained through the "
        f"{cfg.train_bits}-bit coins it is sampled with. Accuracy: the plurality vote (first "
        "choice); one pass: a single sampled pass; H: mean vote entropy (eq. 4, bits) of "
        "correctly and incorrectly classified items; entropy AUROC: vote entropy as a score of "
        "misclassification; OoD AUROC: vote entropy separating the test set from the other "
        f"dataset's test items ({cfg.ood_items}); ECE (15 bins) of the vote shares and of the "
        "mean softmax. One pass, H, AUROCs and ECE at full precision (the b-bit network: at its "
        "bits).", "", table(header, body), "",
        f"Jobs: `{s.jobs}`.", ""]))
    result["terminal_table"] = text_table(header, body)
    return result
