"""The README's and the docs' reproduction figures are the committed report's, not typed-in numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# accuracies, pp differences and the report's "mean ± sd" pairs are written with two decimals
FIGURE = r"\d+\.\d\d(?: ± \d+\.\d\d)?"


def section(path: Path, heading: str) -> str:
    """The text under `heading` up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    return path.read_text(encoding="utf-8").split(heading + "\n", 1)[1].split(f"\n{level} ", 1)[0]


@pytest.mark.parametrize(("page", "heading", "at_least"), [
    ("README.md", "## What we found", 10),
    ("docs/reproduction.md", "## The claims, one by one", 10),
])
def test_every_accuracy_in_a_findings_section_is_in_the_committed_report(page: str, heading: str, at_least: int) -> None:
    text = section(ROOT / page, heading)
    report = (ROOT / "docs" / "results" / "report.md").read_text(encoding="utf-8")
    figures = re.findall(FIGURE, text)
    assert len(figures) >= at_least, f"{page} lost its figures under {heading!r}; update this test with it"
    missing = [f for f in figures if f not in report]
    assert not missing, f"{page} figures not in docs/results/report.md (regenerate the report or fix the page): {missing}"


def test_the_readme_stays_a_five_minute_read() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250
