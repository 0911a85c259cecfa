"""The cost section of a report: what one inference costs, component by component
([`synsample.hardware.measure`][synsample.hardware.measure]'s result)."""

from __future__ import annotations

from typing import Any

from synsample.report.markdown import table


def _n(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.3g}"


def cost_lines(cost: dict[str, Any], heading: str = "## Cost per inference") -> list[str]:
    """Markdown: the components of one inference's energy, then one sample's, the
    deterministic prefix's and the weight memory."""
    per = cost["per_inference"]
    total = per["energy_nj"] * 1e3 or 1.0
    rows = [[k, _n(per["counts"][k]), f"{per['pj_each'][k]:g}", f"{per['energy_pj'][k] / 1e3:,.2f}",
             f"{100 * per['energy_pj'][k] / total:.1f}"]
            for k in sorted(per["counts"], key=lambda k: -per["energy_pj"][k])]
    sample, prefix = cost["per_sample"], cost["prefix"]
    return [heading, "",
            f"Measured by `synsample.hardware` over {cost['items']} test items, "
            f"{cost['samples']} passes each, in {cost.get('mode', 'independent')} mode (every "
            "item draws its own, as a device serving one inference at a time); energies from the "
            "assumption set "
            f"*{cost['assumptions']}* (figures and sources in the JSON).", "",
            table(["component", "count per inference", "pJ each", "nJ per inference", "%"],
                  rows), "",
            f"- **per inference:** {per['energy_nj']:,.1f} nJ, "
            f"{sum(per['random_bits'].values()):,.0f} random bits;",
            f"- **per sample** (one pass of the sampled part, with its vote): "
            f"{sample['energy_nj']:,.2f} nJ, {sum(sample['random_bits'].values()):,.0f} random "
            "bits;",
            f"- **deterministic prefix** (once per inference): {prefix['energy_nj']:,.2f} nJ;",
            f"- **weight memory:** {cost['memory_bytes'] / 1024:,.1f} KiB.", ""]
