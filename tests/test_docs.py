"""Every Python block of the docs runs as written (the blocks of one page in order, sharing
their names, as a reader would run them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "```python" in p.read_text())


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_python_blocks_of_a_page_run(page, capsys):
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert blocks
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page.name} block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            raise AssertionError(f"{page.name}, block {i + 1} fails: {exc!r}") from exc


def test_every_relative_link_of_the_readme_and_docs_resolves():
    root = DOCS.parent
    broken = [f"{page.relative_to(root)} -> {target}"
              for page in [root / "README.md", *sorted(DOCS.rglob("*.md"))]
              for target in re.findall(r"\]\(([^)#\s]+)", page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert not broken, "\n".join(broken)


def test_the_site_builds_in_strict_mode(tmp_path):
    """`make docs`: MkDocs in strict mode fails on a broken link, a missing page in the nav or
    an API reference that does not resolve (the docs extra is installed by make's set-up)."""
    import os
    import subprocess
    import sys

    root = DOCS.parent
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d",
                           str(tmp_path / "site")], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").stat().st_size > 10_000


def test_the_command_line_page_lists_every_experiment_as_the_registry_does():
    from synsample.experiments import registry

    page = (DOCS / "command-line.md").read_text()
    listed = re.findall(r"^\| `([a-z0-9-]+)` \| (.+) \|$", page, flags=re.M)
    assert listed == [(name, registry.get(name).title) for name in registry.names()]


def _doc_commands() -> list[tuple[str, str]]:
    """Every ``synsample ...`` line of the README's and the docs' code blocks, as a reader would
    type it: continued lines joined, comments cut, optional ``[...]`` parts left out, the first
    of ``a|b``."""
    found = []
    for page in [DOCS.parent / "README.md", *sorted(DOCS.rglob("*.md"))]:
        blocks = [b for lang, b in re.findall(r"```(\w*)\n(.*?)```", page.read_text(),
                                              flags=re.S) if lang != "python"]
        for block in blocks:
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():  # continued lines joined
                line = line.split(" #")[0].strip()
                if not line.startswith("synsample ") or "..." in line:
                    continue
                line = re.sub(r"\s*\[[^\]]*\]", "", line)
                line = re.sub(r"(\S+?)\|\S+", r"\1", line)
                found.append((page.name, line))
    return found


def test_every_command_line_of_the_docs_parses(capsys):
    """The commands the docs show are ones the command line accepts (the options exist, the
    values are of the right kind), checked without running them."""
    import shlex

    from synsample import cli

    commands = _doc_commands()
    assert len(commands) > 40
    refused = []
    for page, line in commands:
        try:
            cli.build_parser().parse_args(shlex.split(line)[1:])
        except cli._UsageError as exc:
            refused.append(f"{page}: {line}: {exc}")
        except SystemExit:  # --help, --version
            pass
    capsys.readouterr()
    assert not refused, "\n".join(refused)


def test_docstrings_cross_reference_the_mkdocstrings_way():
    """Sphinx roles (:class:`X`) render raw on the site; the strict build checks the
    ``[`X`][synsample.x.X]`` references of every rendered docstring."""
    role = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`")
    package = Path(__file__).resolve().parents[1] / "src" / "synsample"
    found = [f"{p}:{i}" for p in sorted(package.rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if role.search(line)]
    assert not found, found[:10]
