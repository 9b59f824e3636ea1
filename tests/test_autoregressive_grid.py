"""`hotstart sweep autoregressive` and its report section: every member on one decoder and budget, PIXAR's
stage 2 from stage 1, generations read back, and a rerun that finds everything done."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.experiments.autoregressive import MEMBERS, WRITES_PIXELS


def test_the_grid_trains_every_member_alike_reads_back_generations_and_reports(tiny_corpus: PreparedCorpus,
                                                                                 tmp_path: Path, capsys) -> None:
    out = tmp_path / "auto"
    args = ["sweep", "autoregressive", "--scale", "smoke", "--out", str(out), "--data", str(tiny_corpus.path), "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [f"{m}: done" for m in MEMBERS]
    configs = {m: yaml.safe_load((out / "runs" / f"auto-{m}" / "config.yaml").read_text()) for m in MEMBERS}
    # one decoder for all: the Llama-style blocks at the scale's size
    assert configs["index"]["model"]["decoder"]["kind"] == "llama" and configs["vision"]["model"]["decoder"]["kind"] == "llama"
    for member in ("pixelgpt", "pixar-1", "pixar-2"):
        assert (configs[member]["model"]["decoder"], configs[member]["model"]["size"]) == ("llama", "tiny")
    assert configs["dual"]["model"]["pixel"]["decoder"] == "llama"
    budgets = {m: configs[m]["train"]["max_samples"] for m in MEMBERS if m != "pixar-2"}
    assert len(set(budgets.values())) == 1
    assert configs["pixar-2"]["stage"] == 2 and configs["pixar-2"]["adversarial"]["stage1_run"].endswith("auto-pixar-1")
    assert configs["pixelgpt-text"]["model"]["line"]["cell"] == "free" and configs["pixelgpt"]["model"]["line"]["cell"] == "char"
    for member in WRITES_PIXELS:
        readback = json.loads((out / "runs" / f"auto-{member}" / "readback.json").read_text())
        assert readback["prompts"] == 2 and 0 <= readback["readability"] <= 1
        assert readback["reader"] == ("ocr" if member == "pixelgpt-text" else "glyph")
        # the real continuations, drawn and cut alike, read back (nearly) whole by either reader
        assert readback["reference_readability"] >= 0.75, member
        assert len(readback["references"]) == 2
        assert (out / "runs" / f"auto-{member}" / "generations.png").is_file()
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [f"{m}: done before" for m in MEMBERS]
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ") and "member" not in line]
    assert [line.split(" | ")[0][2:] for line in table] == list(MEMBERS)
    assert (tmp_path / "report" / "autoregressive_accuracy.png").is_file()
    assert (tmp_path / "report" / "autoregressive_pixar-2.png").is_file()
    # two grid folders in one report (a language each, say) keep their own pictures, and one CSV names each row's
    import shutil

    shutil.copytree(out, tmp_path / "again", ignore=shutil.ignore_patterns("checkpoints", "data"))
    assert main(["report", str(out), str(tmp_path / "again"), "--out", str(tmp_path / "both")]) == 0
    both = (tmp_path / "both" / "report.md").read_text()
    for name in ("autoregressive1-auto_accuracy.png", "autoregressive2-again_pixar-2.png"):
        assert f"({name})" in both and (tmp_path / "both" / name).is_file()
    rows = (tmp_path / "both" / "autoregressive.csv").read_text().splitlines()
    assert rows[0].startswith("folder,") and len(rows) == 1 + 2 * len(MEMBERS)


def test_a_member_at_its_floor_is_said_to_have_learned_nothing() -> None:
    from hotstart.experiments.autoregressive import learned

    floors = {"blank": 0.1245, "most_frequent": 0.1245}  # auto-pixar-1's: the comma draws blank at binary 8x8
    assert learned(0.1245, floors) == "learned nothing"  # auto-pixar-1's own accuracy
    assert learned(0.0269, floors) == "learned nothing"  # auto-pixar-2's, below its floor
    assert learned(0.1967, {"most_frequent": 0.045}) == "above its floors"  # auto-index's
    assert learned(None, floors) == "" and learned(0.2, {}) == ""
