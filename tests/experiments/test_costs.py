"""``synsample reproduce costs`` end to end on small synthetic data (16 x 16, 4 classes)."""

import json
from dataclasses import replace

from synsample import hardware
from synsample.experiments import costs, registry


def _rows():
    by_method = {r.method: r for r in costs.ROWS}
    two_members = costs.Row("deep ensemble, 2 x LeNet-5", "ensemble", "none",
                            by_method["ensemble"].train, members=2)
    return (costs.ROWS[0], by_method["sc"], by_method["spinbayes"], two_members)


def test_costs_report_every_row_and_reprices_without_re_evaluating(synthetic16, tmp_path):
    logs: list[str] = []
    cfg = costs.CostsConfig(dataset="synthetic16", samples=4, epochs=1, ood_items=20, limit=40,
                            rows=_rows(), out=tmp_path / "out", jobs=tmp_path / "jobs",
                            data_path=str(synthetic16), progress=False)
    result = registry.run("costs", cfg, log=logs.append)
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == ["scann", "sc", "spinbayes", "ensemble"]
    for r in rows.values():
        assert 0 <= r["accuracy"] <= 1 and r["energy_nj"] > 0 and r["memory_kib"] > 0
        assert r["auroc"]["gaussian-noise"] is not None
    assert rows["ensemble"]["random_bits"] == 0 < rows["spinbayes"]["random_bits"]
    assert rows["spinbayes"]["groups_nj"]["crossbars"] > 0
    assert "s-mtj" in rows["sc"]["cost"]["per_inference"]["random_bits"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "nJ / inference" in report and "## Assumptions (pJ)" in report
    assert (tmp_path / "out" / "figures" / "accuracy-vs-energy.png").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["samples"] == 4

    free = hardware.CostAssumptions(name="free random bits", pj_per_random_bit={
        k: 0.0 for k in hardware.TECHNOLOGIES})
    logs.clear()
    again = registry.run("costs", replace(cfg, assumptions=free), log=logs.append)
    assert sum("[cached] costs-eval" in line for line in logs) == 4  # metrics are reused
    assert not any("[cached] costs-measure" in line for line in logs)  # costs are re-priced
    for before, after in zip(result["rows"], again["rows"], strict=True):
        assert after["accuracy"] == before["accuracy"]
        assert after["random_bits"] == before["random_bits"]
        assert after["groups_nj"].get("random bits", 0.0) == 0.0
