"""Hand-made inputs shaped like the job results the experiments pass to the reports (synthetic
numbers, named as such), and readers of what the reports write (Markdown tables, image links,
PNG sizes)."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_priced(components: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """One part of :func:`synsample.hardware.measure`'s result from ``name -> (count per
    inference, pJ each)`` (names as the cost model writes them: operation kinds,
    ``random bits (TECH)``, ``weight bits read``)."""
    counts = {k: c for k, (c, _) in components.items()}
    each = {k: p for k, (_, p) in components.items()}
    energy = {k: counts[k] * each[k] for k in counts}
    bits = {k[len("random bits ("):-1]: c for k, c in counts.items()
            if k.startswith("random bits (")}
    ops = {k: c for k, c in counts.items()
           if not k.startswith("random bits (") and k != "weight bits read"}
    return {"operations": ops, "random_bits": bits,
            "weight_bits_read": counts.get("weight bits read", 0.0), "counts": counts,
            "pj_each": each, "energy_pj": energy, "energy_nj": sum(energy.values()) * 1e-3}


#: a synthetic inference: 9.2 + 0.5 + 0.1 = 9.8 nJ (93.9%, 5.1%, 1.0%)
SYNTHETIC_COMPONENTS = {"mac": (2000.0, 4.6), "random bits (cmos)": (50000.0, 0.01),
                        "weight bits read": (640.0, 0.15625)}


def synthetic_cost(components: dict[str, tuple[float, float]] | None = None, items: int = 16,
                   samples: int = 20, memory_bytes: float = 3072.0,
                   mode: str | None = "independent") -> dict[str, Any]:
    """A cost result as :func:`synsample.hardware.measure` returns it (synthetic counts)."""
    components = SYNTHETIC_COMPONENTS if components is None else components
    sample = {k: (c / samples, p) for k, (c, p) in components.items() if k != "weight bits read"}
    cost = {"assumptions": "synthetic prices", "assumption_set": {}, "items": items,
            "samples": samples, "per_inference": synthetic_priced(components),
            "per_sample": synthetic_priced(sample),
            "prefix": synthetic_priced({"mac": (100.0, 4.6)}),
            "memory_bits": 8 * memory_bytes, "memory_bytes": memory_bytes}
    if mode is not None:
        cost["mode"] = mode
    return cost


def md_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text``: its rows of stripped cells, header first, the
    separator row left out."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip()[1:-1].split("|")]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def md_table(text: str, *header: str) -> list[list[str]]:
    """The first table whose header starts with ``header``: header row, then the body."""
    for t in md_tables(text):
        if t[0][:len(header)] == list(header):
            return t
    raise AssertionError(f"no table with header {header} in:\n{text}")


def row(table: list[list[str]], first: str, nth: int = 0) -> list[str]:
    """The ``nth`` body row of ``table`` whose first cell is ``first``."""
    rows = [r for r in table[1:] if r[0] == first]
    assert len(rows) > nth, f"no row {first!r} in {table}"
    return rows[nth]


def image_links(text: str) -> list[str]:
    """The paths of the Markdown image links in ``text``, in order."""
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def assert_links_resolve(text: str, folder: Path) -> list[str]:
    """Every image link of a report is relative and names a PNG that exists under ``folder``."""
    links = image_links(text)
    for link in links:
        assert not Path(link).is_absolute(), link
        assert_png(folder / link)
    return links


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def assert_png(path: Path) -> tuple[int, int]:
    """``path`` is a non-empty PNG of a plausible size; returns its size."""
    assert path.is_file(), path
    w, h = png_size(path)
    assert w > 50 and h > 50 and path.stat().st_size > 1000
    return w, h
