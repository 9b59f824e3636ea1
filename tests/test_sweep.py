"""Sweeps and reports: grid definitions, the protocols, resuming, and a report from real tiny runs."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.experiments.paper import HOT_POINTS
from hotstart.experiments.report import (
    _still_rising,
    ablation_section,
    ablations,
    write_report,
)
from hotstart.experiments.runs import Run, Selector, acc_at, run_axes
from hotstart.experiments.sweep import SCALES, SweepConfig, grid_runs, run_sweep
from hotstart.experiments.verdicts import (
    _verdict_hot,
    replication_section,
    verdict_section,
)


def test_paper_grid_is_the_union_of_the_named_grids_without_duplicates() -> None:
    scale = SCALES["cpu"]
    paper = [s.name for s in grid_runs("paper", scale)]
    assert len(paper) == len(set(paper))
    for grid in ("rq1", "rq2", "rq3", "rq4", "efficiency", "ablations"):
        assert {s.name for s in grid_runs(grid, scale)} <= set(paper), grid
    assert len(grid_runs("rq4", scale)) == 1 + 5 * 3  # index + every resolution x crop


def test_rq2_has_every_hot_seed_and_seeds_can_be_replaced() -> None:
    names = [s.name for s in grid_runs("rq2", SCALES["cpu"])]
    assert names[:3] == ["hot-index-s0", "hot-simp-8x8-s0", "hot-simp-40x40-s0"]
    assert {n.rsplit("-s", 1)[1] for n in names} == {"0", "1", "2"}
    assert {s.seed for s in grid_runs("rq2", SCALES["cpu"], seeds=(7,))} == {7}


def test_hot_protocol_keeps_the_paper_schedule_and_final_anneals_within_its_budget() -> None:
    scale = SCALES["cpu"]
    hot, final = grid_runs("efficiency", scale)[0], grid_runs("efficiency", scale)[4]
    assert (hot.protocol, final.protocol) == ("hot", "final")
    hot_train = hot.run_config(scale, "data").train
    assert hot_train.max_samples == 16384 and hot_train.schedule_samples is None  # the paper's 1M-sample OneCycle
    assert hot_train.eval_every == 2048 and hot_train.dense_until == 16384
    final_train = final.run_config(scale, "data").train
    assert final_train.max_samples == final_train.schedule_samples == scale.final_samples
    paper_final = final.run_config(SCALES["paper"], "data").train
    assert paper_final.max_samples is None and paper_final.patience == 7  # early stopping decides


def test_report_recognises_a_runs_settings_from_its_config() -> None:
    scale = SCALES["cpu"]
    spec = next(s for s in grid_runs("ablations", scale) if s.name == "hot-simp-8x8-rawpix-s0")
    from hotstart.config import to_dict

    axes = run_axes(to_dict(spec.run_config(scale, "data")))
    assert axes == {"protocol": "hot", "kind": "vision", "encoder": "simp", "res": 8, "crop": 1.0,
                    "pixel_norm": "raw", "output_norm": "layernorm", "embed_init_std": None,
                    "size": "small-cpu", "schedule": "paper", "seed": 0, "encoder_norm": "group", "encoder_size": "ours",
                    "pool": 4, "patch": 0, "input_scale": "none", "center": False, "tie_head": False,
                    "onecycle_div": 25.0, "span": None, "curriculum": "fresh", "holdout": 0.0,
                    "head": "linear", "glyph_permute": None, "glyph_source": "font", "adapter_init_std": 0.0}


def test_accuracy_between_evaluations_is_interpolated_and_says_so() -> None:
    rows = [{"samples": 4096, "val_acc": 0.10}, {"samples": 8192, "val_acc": 0.20}]
    assert acc_at(rows, 4096) == (0.10, False)
    value, interpolated = acc_at(rows, 6144)
    assert value == pytest.approx(0.15) and interpolated
    assert acc_at(rows, 10000) == (None, False)


def test_unknown_grid_scale_or_seeds_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(HotStartError, match="unknown grid 'rq9'"):
        grid_runs("rq9", SCALES["cpu"])
    assert main(["sweep", "rq1", "--scale", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown scale 'huge'" in capsys.readouterr().err
    assert main(["sweep", "rq2", "--seeds", "a,b", "--out", str(tmp_path)]) == 2
    assert "--seeds takes comma-separated integers" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_sweep_resumes_and_reports(inews_corpus: PreparedCorpus, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sweep"
    cfg = SweepConfig(grid="rq2", out=str(out), scale="smoke", seeds=(0, 1), only=["index", "simp-8x8"],
                      data=str(inews_corpus.path))
    statuses = run_sweep(cfg, progress=False)
    assert [s["status"] for s in statuses] == ["trained"] * 4
    assert [s["status"] for s in run_sweep(cfg, progress=False)] == ["done before"] * 4  # nothing retrained
    for run_dir in out.glob("runs/*"):  # the input-vector spread is kept while the checkpoints exist
        assert set(json.loads((run_dir / "embeddings.json").read_text())) == {"init", "best"}, run_dir.name
    pinned = json.loads((out / "sweep.json").read_text())["precision"]
    assert {json.loads(p.read_text())["environment"]["precision"] for p in out.glob("runs/*/summary.json")} == {pinned}
    other = "fp32" if pinned == "bf16" else "bf16"
    with pytest.raises(HotStartError, match=f"trained in {pinned}"):  # refused before anything trains
        run_sweep(replace(cfg, precision=other), progress=False)

    report = write_report([out], tmp_path / "report", command="hotstart report sweep --out report")
    files = {p.name for p in report.parent.iterdir()}
    assert {"report.md", "hot_start.png", "resolution.png", "ablations.png", "glyphs.png", "curves.csv",
            "runs.csv", "hot_start.csv", "main.csv", "efficiency.csv", "ablations.csv", "verdicts.csv"} <= files
    text = report.read_text()
    assert "hotstart sweep rq2 --scale smoke" in text and "hotstart report sweep --out report" in text
    assert "| 1,024 | " in text  # the end of the smoke window, for index, 8x8 (and no 40x40 run)
    assert "## What did and did not replicate\n\n- **" in text
    assert "| hot-simp-8x8-s1 | " in text.split("## Input vectors")[1]
    assert "![input spread](input_spread.png)" in text and (report.parent / "input_spread.png").stat().st_size > 10_000
    with (report.parent / "curves.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["run"] for r in rows} == {"hot-index-s0", "hot-index-s1", "hot-simp-8x8-s0", "hot-simp-8x8-s1"}
    assert all(0.0 <= float(r["val_acc"]) <= 1.0 for r in rows)
    with (report.parent / "verdicts.csv").open() as f:
        verdicts = {r["claim"]: r["verdict"] for r in csv.DictReader(f)}
    assert verdicts["RQ1: vision 8x8 reaches the index baseline's final accuracy"] == "not measured"
    assert "Partial report" not in text

    (out / "runs" / "hot-index-s1" / "summary.json").unlink()  # as if killed mid-run
    shutil.rmtree(out / "runs" / "hot-simp-8x8-s1")  # as if never started
    text = write_report([out], tmp_path / "report").read_text()
    assert ("Partial report: 2 of 4 planned runs finished, 1 unfinished, 1 not started (hot-simp-8x8-s1)"
            in text)


def test_report_of_a_folder_without_runs_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def _hot_run(kind: str, accs: tuple[float, ...], seed: int = 0, **axes) -> Run:
    vision = kind == "vision"
    base = {"protocol": "hot", "kind": kind, "encoder": "simp" if vision else None, "res": 8 if vision else None,
            "crop": 1.0 if vision else None, "pixel_norm": "standardize" if vision else None,
            "output_norm": "layernorm" if vision else None, "embed_init_std": None if vision else 0.02,
            "size": "small-cpu", "schedule": "paper", "seed": seed}
    rows = [{"samples": s, "val_acc": a, "val_loss": 1.0} for s, a in zip(HOT_POINTS, accs, strict=True)]
    return Run(f"{kind}-{seed}-{sorted(axes.items())}", {**base, **axes}, rows, None, {})


def test_the_hot_start_verdict_names_the_ablation_conditions_under_which_it_held() -> None:
    runs = [_hot_run("index", (0.050 + s / 1000,) * 4, seed=s) for s in range(3)]
    runs += [_hot_run("vision", (0.045 + s / 1000,) * 4, seed=s) for s in range(3)]
    runs += [_hot_run("index", (0.08, 0.09, 0.10, 0.11), schedule="warmup"),
             _hot_run("vision", (0.08, 0.14, 0.16, 0.17), schedule="warmup"),  # ahead from 6,152 on
             _hot_run("vision", (0.04,) * 4, pixel_norm="raw")]  # behind: not a condition that held
    _, verdict, evidence = _verdict_hot(Selector(runs), 8, "paper text")
    assert verdict == "held only with the warm-up schedule (at 6,152, 8,200, 10,248)"
    assert "under 2 ablation condition(s) (with the warm-up schedule, with raw-pixel glyphs)" in evidence

    runs[3:6] = [_hot_run("vision", (0.10 + s / 1000,) * 4, seed=s) for s in range(3)]  # now ahead everywhere
    assert _verdict_hot(Selector(runs), 8, "")[1] == "held at 4,096, 6,152, 8,200, 10,248"
    assert _verdict_hot(Selector(runs[:3] + runs[6:]), 8, "")[1] == "not measured"  # no reference vision runs


def test_the_plain_summary_groups_claims_by_outcome_and_names_where_vision_came_closest() -> None:
    runs = [_hot_run("index", (0.050 + s / 1000,) * 4, seed=s) for s in range(3)]
    runs += [_hot_run("vision", (0.045 + s / 1000,) * 4, seed=s) for s in range(3)]
    runs += [_hot_run("index", (0.08, 0.09, 0.10, 0.11), schedule="warmup"),
             _hot_run("vision", (0.08, 0.14, 0.17, 0.17), schedule="warmup")]
    for run in runs:
        run.summary = {"stop_reason": "max_samples"}
    select = Selector(runs)
    _, rows = verdict_section(select, plateau=0.044)
    lines = replication_section(select, rows, [("schedule", {"index, warm-up": runs[6:7], "vision, warm-up": runs[7:8]})])
    assert ("- **Replicated only under a condition:**\n  - RQ2: hot start, vision 8x8 well ahead of index early in "
            "training: 4,096: 4.60 vs 5.10") in lines  # the paper setting's numbers; the condition is in the verdict
    assert "- **Not measured yet:**\n  - RQ1" in lines  # no final-protocol runs
    assert ("largest mean lead at any of the paper's points was +7.00 pp (with the warm-up schedule, at 8,200 samples); "
            "the paper's was +6.50 pp at 8,200") in lines
    # at 8,192, interpolated 2,040/2,048 of the way from 6,152 to 8,200: vision 0.16988 - 0.046, index 0.09996 - 0.051
    assert "largest first: vision, warm-up (1 seed) +12.39 pp; index, warm-up (1 seed) +4.90 pp." in lines

    # a hot start among the explain grid's candidates is named beside the verdicts, with its seeds
    explain_rows = [{"candidate": "8. 40x40 at gpt2-small", "seeds": "1 seed each", "verdict": "hot start at 4,096"},
                    {"candidate": "1. orig", "seeds": "1 seed each", "verdict": "no hot start"}]
    lines = replication_section(select, rows, [], explain_rows)
    assert ('- A hot start by the same rule, among the candidate settings of "What the hot start needs": '
            "8. 40x40 at gpt2-small (1 seed each: hot start at 4,096); 1 of 2 candidates tried passed.") in lines
    assert "1. orig" not in lines

    runs[7].summary = None  # an unfinished variant is left out of the effects
    assert "vision, warm-up" not in replication_section(select, rows, [("schedule", {"vision, warm-up": runs[7:8]})])


def test_ablation_plots_keep_one_colour_for_the_papers_setting_in_every_panel() -> None:
    runs = [_hot_run("index", (0.05,) * 4), _hot_run("vision", (0.045,) * 4),
            _hot_run("index", (0.08,) * 4, schedule="warmup"), _hot_run("vision", (0.04,) * 4, pixel_norm="raw")]
    select = Selector(runs)
    _, _, panels, colors = ablation_section(select, ablations(select), None, 10248)
    assert colors["index, OneCycle"] == colors["index (reference)"] == "C0"
    assert colors["vision 8x8, OneCycle"] == colors["vision 8x8, standardised bank"] == "C1"
    assert colors["index, warm-up"] == colors["vision 8x8, raw ink in [0, 1]"] == "C2"  # first variant of its panel
    assert all(label in colors for _, curves in panels for label in curves)


def test_the_main_table_says_when_budget_stopped_final_runs_were_still_rising() -> None:
    run = _hot_run("index", (0.05,) * 4)
    run.axes["protocol"] = "final"
    run.rows = [{"samples": 16384, "val_acc": 0.17, "val_loss": 5.1}, {"samples": 24576, "val_acc": 0.183, "val_loss": 5.0}]
    run.summary = {"stop_reason": "max_samples"}
    text = _still_rising(Selector([run]))
    assert "(16,384 to 24,576 samples) accuracy still rose by +1.30 pp (index)" in text
    run.summary = {"stop_reason": "early_stopping"}  # a plateau reached by early stopping needs no warning
    assert _still_rising(Selector([run])) == ""


def test_each_grid_section_names_the_corpus_version_its_runs_trained_on(tmp_path: Path) -> None:
    import json

    from hotstart.experiments.report import corpus_note

    old, new, own = tmp_path / "old", tmp_path / "new", tmp_path / "own"
    for folder, record in ((old, {"commands": ["hotstart sweep family"]}),
                           (new, {"commands": ["hotstart sweep family"], "corpus_version": 2}),
                           (own, {"commands": ["hotstart sweep autoregressive --data D"]})):
        folder.mkdir()
        name = "autoregressive" if folder is own else "family"
        (folder / f"{name}.json").write_text(json.dumps(record), encoding="utf-8")
    assert "inews, version 1" in corpus_note(old)  # recorded before versions existed
    assert "inews, version 2" in corpus_note(new)
    assert "own prepared corpus" in corpus_note(own)


@pytest.mark.parametrize(("grid", "first"), [("family", "family-mae"), ("autoregressive", "auto-index"),
                                             ("fonts", "fonts-index"), ("robustness", "fonts-index"),
                                             ("attribution", "attribution-vision-4x4")])
def test_list_works_on_every_member_grid_and_shows_progress(grid: str, first: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    assert main(["sweep", grid, "--scale", "smoke", "--list"]) == 0
    assert capsys.readouterr().out.splitlines()[0].strip() == first
    run = tmp_path / "runs" / first
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(json.dumps({"samples": 2048}) + "\n")
    assert main(["sweep", grid, "--scale", "smoke", "--list", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == [first, "2,048", "samples"]
    assert not (tmp_path / "data").exists()  # listing prepares and trains nothing
