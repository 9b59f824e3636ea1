"""`hotstart sweep family`: four members pretrained on the same sequences, budget and settings, each
fine-tuned (probe and full); rerunning skips what is done; the report's family section reads the folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_finetune import separable_task

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.experiments.family import (
    FAMILY_SCALES,
    MEMBERS,
    member_config,
    run_family,
)


def test_every_member_pretrains_on_the_same_data_budget_and_settings() -> None:
    scale = FAMILY_SCALES["cpu"]
    configs = {m: member_config(m, scale, "data") for m in MEMBERS}
    trains = {m: vars(c.train) for m, c in configs.items()}
    assert all(t == trains["mae"] for t in trains.values())
    # planned in steps: 6,000 of 16 sequences
    assert trains["mae"]["max_samples"] == trains["mae"]["schedule_samples"] == 96_000 and not trains["mae"]["curriculum"]
    assert trains["mae"]["batch_size"] == 16
    assert {c.data for c in configs.values()} == {"data"}
    assert configs["mae"].model.line.max_patches == 144  # 128 characters and the end patch on a 12 x 12 grid
    assert configs["mae"].model.line.edge == "fit"  # lines drawn as new runs draw them
    # the control: the same MAE and lines, one character per patch; running text for PIXEL-M4's own
    assert (configs["mae"].model.line.cell, configs["mae-cells"].model.line.cell) == ("free", "char")
    assert vars(configs["mae-cells"].model.line) == {**vars(configs["mae"].model.line), "cell": "char"}
    assert configs["mae-cells"].model.size == configs["mae"].model.size
    from hotstart.experiments.family import finetune_config

    assert finetune_config(scale, "full", 128, "fp32", "cpu", "inews-sentiment").recipe == "pixel-m4"
    assert finetune_config(scale, "probe", 128, "fp32", "cpu", "inews-sentiment").recipe == "ours"
    assert configs["mae"].model.size == configs["mlm"].model.size == "small-cpu"
    assert configs["index"].model.decoder.n_layer == 4 and configs["vision"].model.input.kind == "vision"


@pytest.fixture(scope="module")
def family(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("family")
    task = separable_task(tmp / "task", tiny_corpus)
    run_family(tmp / "fam", "smoke", data=str(tiny_corpus.path), task=str(task), precision="fp32", device="cpu",
               progress=False, command="test")
    return tmp / "fam"


def test_each_member_is_pretrained_costed_and_fine_tuned_both_ways(family: Path, tiny_corpus: PreparedCorpus) -> None:
    for member in MEMBERS:
        run = family / "runs" / f"family-{member}"
        assert json.loads((run / "summary.json").read_text())["samples"] == 256
        assert yaml.safe_load((run / "config.yaml").read_text())["objective"] == {"index": "next-char",
                                                                               "vision": "next-char", "mae-cells": "mae"}.get(member, member)
        cost = json.loads((run / "cost.json").read_text())
        assert cost["train_flops_per_sample"] > 0 and cost["parameters"]["total"] > 0
        for mode in ("probe", "full"):
            result = json.loads((run / mode / "finetune.json").read_text())
            assert result["mode"] == mode and result["max_chars"] == tiny_corpus.seq_len
            assert [p["train_examples"] for p in result["curve"]] == [64]
    assert json.loads((family / "family.json").read_text())["precision"] == "fp32"
    for member in ("mae", "mae-cells"):
        readback = json.loads((family / "runs" / f"family-{member}" / "readback.json").read_text())  # OCR of its reconstructions
        assert readback["lines"] == 8 and readback["ocr_cer_real"] < readback["ocr_cer_floor"]


def test_a_rerun_skips_every_finished_member(family: Path, tiny_corpus: PreparedCorpus) -> None:
    before = {p: p.stat().st_mtime for p in family.glob("runs/*/metrics.jsonl")}
    statuses = run_family(family, "smoke", data=str(tiny_corpus.path), task=str(family.parent / "task"),
                          precision="fp32", device="cpu", progress=False)
    assert [s["status"] for s in statuses] == ["done before"] * len(MEMBERS)
    assert before == {p: p.stat().st_mtime for p in family.glob("runs/*/metrics.jsonl")}


def test_the_report_has_a_family_section_with_every_member(family: Path, tmp_path: Path) -> None:
    assert main(["report", str(family), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    for member in MEMBERS:
        assert f"| {member} | probe |" in text and f"| {member} | full |" in text
    assert "Always answering the most frequent training label" in text
    assert "The MAE's reconstructions read back by OCR" in text and "(the floor)" in text
    assert "The mae-cells MAE's reconstructions read back by OCR" in text
    assert (tmp_path / "rep" / "family_finetuning.png").is_file() and (tmp_path / "rep" / "family_pretraining.png").is_file()
    rows = (tmp_path / "rep" / "family_finetuning.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * len(MEMBERS)


def test_a_family_at_an_unknown_scale_or_with_an_unknown_member_is_refused(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    assert main(["sweep", "family", "--scale", "paper", "--out", str(tmp_path / "f")]) == 2
    assert "the family grid has no scale 'paper'" in capsys.readouterr().err
    assert main(["sweep", "family", "--scale", "smoke", "--only", "pixelgpt", "--out", str(tmp_path / "f")]) == 2
    assert "unknown family member 'pixelgpt'" in capsys.readouterr().err


def test_a_family_without_a_task_only_pretrains_and_a_rerun_skips_it(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    kw = {"data": str(tiny_corpus.path), "task": None, "members": ["mlm"], "precision": "fp32", "device": "cpu",
          "progress": False}
    assert run_family(tmp_path / "f", "smoke", **kw) == [{"member": "mlm", "status": "done"}]
    run = tmp_path / "f" / "runs" / "family-mlm"
    assert (run / "summary.json").is_file() and not (run / "probe").exists() and not (run / "full").exists()
    assert run_family(tmp_path / "f", "smoke", **kw) == [{"member": "mlm", "status": "done before"}]


def test_a_member_added_to_a_scale_joins_the_folder_of_the_members_before_it(tiny_corpus: PreparedCorpus,
                                                                            tmp_path: Path) -> None:
    from dataclasses import asdict

    from hotstart.experiments.grid import open_member_grid

    before = {**asdict(FAMILY_SCALES["smoke"]), "members": ["mae", "mlm", "index", "vision"], "about": "older words"}
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "family.json").write_text(json.dumps({"scale": "smoke", "commands": [], "scale_settings": before}))
    grid = open_member_grid(tmp_path / "f", "family", "family.json", "smoke", 64, str(tiny_corpus.path), "fp32", "cpu",
                            False, "", scale_settings=asdict(FAMILY_SCALES["smoke"]))
    assert grid.record["scale"] == "smoke"


def test_a_folder_of_an_earlier_plan_or_another_corpus_is_not_mixed_with_new_runs(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    from dataclasses import asdict

    earlier = {**asdict(FAMILY_SCALES["smoke"]), "pretrain_samples": 128}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "family.json").write_text(json.dumps({"scale": "smoke", "commands": [], "scale_settings": earlier}))
    assert main(["sweep", "family", "--scale", "smoke", "--out", str(tmp_path / "old")]) == 2
    assert "as planned before (pretrain_samples differ from today's plan)" in capsys.readouterr().err
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "family.json").write_text(json.dumps({"scale": "smoke", "commands": [], "corpus": "kjv"}))
    assert main(["sweep", "family", "--scale", "smoke", "--out", str(tmp_path / "en")]) == 2
    assert "a family grid of the built-in corpus kjv, not inews" in capsys.readouterr().err
    # a new folder starts a grid of whichever built-in corpus is asked for (the grid sweep's --corpus kjv)
    assert main(["sweep", "family", "--scale", "smoke", "--corpus", "kjv", "--only", "mlm", "--quiet",
                 "--out", str(tmp_path / "new-en")]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "new-en" / "family.json").read_text())["corpus"] == "kjv"
    assert main(["sweep", "fonts", "--scale", "smoke", "--corpus", "kjv", "--out", str(tmp_path / "x")]) == 2
    assert "--corpus is an option of the family and autoregressive grids" in capsys.readouterr().err
    assert main(["sweep", "family", "--scale", "smoke", "--corpus", "klingon", "--out", str(tmp_path / "x")]) == 2
    assert "unknown built-in corpus 'klingon'" in capsys.readouterr().err


def test_two_family_folders_in_one_report_keep_their_own_pictures(family: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(family, tmp_path / "again", ignore=shutil.ignore_patterns("checkpoints", "data"))
    assert main(["report", str(family), str(tmp_path / "again"), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    for name in (f"family1-{family.name}_pretraining.png", "family2-again_pretraining.png"):
        assert f"({name})" in text and (tmp_path / "rep" / name).is_file()
