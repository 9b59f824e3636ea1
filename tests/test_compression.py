"""The compression grid: lines squeezed by each rendering strategy, read back by the OCR engine and the glyph reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotstart.cli import main
from hotstart.data.corpus import clean_text, read_documents
from hotstart.experiments.compression import cer, cut_lines, list_settings
from hotstart.experiments.report import write_report


def test_cer_counts_edits_over_the_lines_characters_without_spaces() -> None:
    assert cer(["abc", "x y"], ["abd", "xy"]) == pytest.approx(1 / 5)
    assert cer(["", ""], ["新华社", "ab"]) == 1.0  # reading nothing: the floor
    assert cer(["ＡＢ"], ["AB"]) == 0.0  # NFKC, as the corpus is


def test_english_lines_are_cut_at_whole_words() -> None:
    text = f" {' '.join(clean_text(doc.text) for doc in read_documents('kjv'))} "
    lines = cut_lines("kjv", 5, 32)
    assert len(lines) == 5 and all(len(line) >= 32 and f" {line} " in text for line in lines), lines


@pytest.mark.slow
def test_the_smoke_grid_measures_every_strategy_resumes_and_reports(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g"
    assert main(["sweep", "compression", "--scale", "smoke", "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "compression.jsonl").read_text(encoding="utf-8").splitlines()]
    by = {(r["language"], r["strategy"]): r for r in rows}
    assert len(rows) == 2 + 2 * 4  # a ceiling and the four strategies, per language
    # the smoke lines of Chinese are 24 characters, no spaces: one per char cell, two per bigram cell, exactly
    assert by["zh", "char"]["chars_per_patch"] == 1.0 and by["zh", "bigram"]["chars_per_patch"] == 2.0
    assert by["zh", "words"]["chars_per_patch"] == by["zh", "free"]["chars_per_patch"]  # one word each
    for lang in ("zh", "en"):
        assert by[lang, "ceiling"]["ocr_cer"] < 0.1  # the engine reads large clean lines
        assert by[lang, "char"]["glyph_cer"] < 0.02  # each patch its own character, read back
        assert by[lang, "free"]["glyph_cer"] is None  # the glyph reader needs one character per patch
    assert (out / "compression.png").is_file()
    # rerunning resumes: nothing is measured twice; another scale in the same folder is refused
    assert main(["sweep", "compression", "--scale", "smoke", "--out", str(out), "--quiet"]) == 0
    assert len((out / "compression.jsonl").read_text(encoding="utf-8").splitlines()) == len(rows)
    assert main(["sweep", "compression", "--scale", "cpu", "--out", str(out), "--quiet"]) == 2
    assert "holds the compression grid at scale 'smoke'" in capsys.readouterr().err
    assert all(line.endswith("measured") for line in list_settings("smoke", str(out)).splitlines())
    report = write_report([out], tmp_path / "report").read_text(encoding="utf-8")
    assert "## How far a line can be squeezed" in report and "![compression against readability](compression.png)" in report
    assert (tmp_path / "report" / "compression.csv").is_file() and (tmp_path / "report" / "compression.png").is_file()
