"""The README's reproduction figures are the committed report's, not typed-in numbers."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_accuracy_in_the_readmes_claims_section_is_in_the_committed_report() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The paper's claims at cpu scale", 1)[1].split("\n## ", 1)[0]
    report = (ROOT / "docs" / "results" / "report.md").read_text(encoding="utf-8")
    # accuracies, pp differences and the report's "mean ± sd" pairs are written with two decimals
    figures = re.findall(r"\d+\.\d\d(?: ± \d+\.\d\d)?", section)
    assert len(figures) > 10, "the claims section lost its figures; update this test with it"
    missing = [f for f in figures if f not in report]
    assert not missing, f"README figures not in docs/results/report.md (regenerate the report or fix the README): {missing}"
