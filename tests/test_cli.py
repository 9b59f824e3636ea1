"""The command line: every subcommand end to end on tiny inputs, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.render.glyph import GlyphRenderer, RenderConfig


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m hotstart ARGS` in a fresh process, as a user would run it."""
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # never the network
    return subprocess.run([sys.executable, "-m", "hotstart", *args], capture_output=True, text=True, timeout=300,
                          check=False, env=offline)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_run(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny vision run trained through the CLI."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--data", str(tiny_corpus.path), "--input", "vision", "--res", "8", "--encoder", "opt",
                 "--size", "tiny", "--max-samples", "64", "--batch-size", "16", "--eval-every", "32",
                 "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.mark.subprocess
def test_bad_inputs_give_one_line_errors_in_a_subprocess(tmp_path: Path, tiny_corpus: PreparedCorpus) -> None:
    undecodable = tmp_path / "gbk.txt"
    undecodable.write_bytes("中文新闻".encode("gbk") * 50)
    assert_one_line_error(run_cli("prepare", "--corpus", str(undecodable), "--out", str(tmp_path / "p")),
                          str(undecodable), "--encoding")
    assert_one_line_error(run_cli("train", "--data", str(tiny_corpus.path), "--input", "vision", "--res", "1000",
                                  "--out", str(tmp_path / "r")), "res")
    assert_one_line_error(run_cli("eval", str(tmp_path / "no_such_run")), "does not exist")


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["prepare", "--corpus", "/no/such/corpus", "--out", "{tmp}/p"], "does not exist"),
        (["render", "--chars", "山", "--res", "0", "--out", "{tmp}/g.png"], "res"),
        (["render", "--chars", "山", "--res", "1000", "--out", "{tmp}/g.png"], "res"),
        (["render", "--chars", "山", "--crop", "0", "--out", "{tmp}/g.png"], "crop"),
        (["render", "--chars", "山", "--crop", "1.5", "--out", "{tmp}/g.png"], "crop"),
        (["render", "--chars", "山", "--font", "/no/such/font.ttf", "--out", "{tmp}/g.png"], "does not exist"),
        (["train", "--data", "{data}", "--input", "vision", "--encoder", "resnet", "--out", "{tmp}/r"], "unknown encoder"),
        (["train", "--data", "{data}", "--input", "pixels", "--out", "{tmp}/r"], "unknown input"),
        (["train", "--data", "{data}", "--input", "vision", "--crop", "1.5", "--out", "{tmp}/r"], "crop"),
        (["train", "--data", "{data}", "--input", "index", "--size", "huge", "--out", "{tmp}/r"], "unknown decoder size"),
        (["train", "--data", "{tmp}/not_prepared", "--input", "index", "--out", "{tmp}/r"], "not_prepared"),
        (["train", "--data", "{data}", "--input", "index", "--max-samples", "0", "--out", "{tmp}/r"], "max-samples"),
        (["eval", "{tmp}/no_such_run"], "does not exist"),
        (["train", "--data", "{data}", "--input", "index"], "--out"),
        (["frobnicate"], "(see hotstart --help)"),  # the rest is argparse's wording
    ],
)
def test_bad_inputs_exit_2_with_a_one_line_message(argv: list[str], fragment: str, tmp_path: Path,
                                                   tiny_corpus: PreparedCorpus, capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(tmp=tmp_path, data=tiny_corpus.path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_empty_corpus_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\t\n", encoding="utf-8")
    assert main(["prepare", "--corpus", str(empty), "--out", str(tmp_path / "p")]) == 2
    assert "has no characters after cleaning" in capsys.readouterr().err


def test_render_draws_each_glyph_of_the_library_in_its_cell(tmp_path: Path) -> None:
    chars = "山水中国"
    assert main(["render", "--chars", chars, "--res", "8", "--out", str(tmp_path / "grid.png")]) == 0
    with Image.open(tmp_path / "grid.png") as image:
        sheet = np.asarray(image.convert("L"))
    rows = [(res, crop) for res in (4, 8, 20, 40) for crop in (1.0, 0.8, 0.5)]  # --res 8 and the paper's
    cell, step = 96, 96 + 2  # a 96-pixel label column, then 96-pixel cells 2 pixels apart
    assert sheet.shape == (len(rows) * step + 2, 96 + len(chars) * step + 2)
    for row, (res, crop) in enumerate(rows):
        renderer = GlyphRenderer(RenderConfig(res=res, crop=crop))
        centres = ((np.arange(res) + 0.5) * cell / res).astype(int)  # the middle of each upscaled pixel
        for col, ch in enumerate(chars):
            y, x = 2 + row * step, 96 + 2 + col * step
            drawn = sheet[y:y + cell, x:x + cell][np.ix_(centres, centres)]
            expected = np.round((1.0 - renderer.render(ch)) * 255)  # ink dark on white
            np.testing.assert_array_equal(drawn, expected, err_msg=f"{ch} at {res}x{res}, crop {crop}")
    at_20 = [sheet[2 + 6 * step:2 + 6 * step + cell, 98 + c * step:98 + c * step + cell] for c in range(4)]
    assert all(cell_px.min() < 64 and cell_px.max() == 255 for cell_px in at_20)  # ink and paper in every cell
    assert len({cell_px.tobytes() for cell_px in at_20}) == 4  # four characters, four pictures


def test_train_then_eval_with_render_overrides(tiny_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(tiny_run), "--device", "cpu", "--quiet"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["eval", str(tiny_run), "--crop", "0.5", "--res", "12", "--device", "cpu", "--quiet"]) == 0
    cropped = json.loads(capsys.readouterr().out)
    assert plain["input"] == "vision" and 0 <= plain["val_acc"] <= 1 and plain["val_tokens"] > 0
    assert cropped["render"]["crop"] == 0.5 and cropped["render"]["res"] == 12
    assert cropped["val_loss"] != plain["val_loss"]


def test_params_prints_every_model(capsys: pytest.CaptureFixture) -> None:
    assert main(["params", "--size", "tiny", "--vocab-size", "100"]) == 0
    out = capsys.readouterr().out
    for model in ("| index |", "| vision-orig |", "| vision-opt |", "| vision-simp |"):
        assert model in out


@pytest.mark.subprocess
def test_version_and_module_entry_point() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("hotstart ")


def test_plot_draws_several_runs_and_refuses_unknown_metrics(tiny_run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    assert main(["plot", str(tiny_run), str(tiny_run), "--metric", "val_loss", "--out", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").width > 100
    assert main(["plot", str(tiny_run), "--metric", "bleu", "--out", str(tmp_path / "d.png")]) == 2
    assert "metric 'bleu'" in capsys.readouterr().err


def test_a_run_config_file_is_the_base_and_options_override_it(tiny_run: Path, tmp_path: Path) -> None:
    import yaml

    out = tmp_path / "again"
    assert main(["train", "--config", str(tiny_run / "config.yaml"), "--seed", "7", "--max-samples", "32",
                 "--out", str(out), "--quiet"]) == 0
    base, again = (yaml.safe_load((d / "config.yaml").read_text()) for d in (tiny_run, out))
    assert again["train"]["seed"] == 7 and again["train"]["max_samples"] == 32
    assert again["model"] == base["model"]  # vision, opt encoder, tiny decoder: all from the file
    assert {k: v for k, v in again["train"].items() if k not in ("seed", "max_samples")} == \
           {k: v for k, v in base["train"].items() if k not in ("seed", "max_samples")}


def test_presets_fill_the_model_and_the_command_line_wins(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    import yaml

    assert main(["presets"]) == 0
    assert "paper-vision-8x8" in capsys.readouterr().out
    out = tmp_path / "run"
    assert main(["train", "--preset", "cpu-vision-40x40", "--data", str(tiny_corpus.path), "--size", "tiny",
                 "--res", "12", "--max-samples", "16", "--batch-size", "16", "--precision", "fp32",
                 "--out", str(out), "--quiet"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["model"]["input"]["kind"] == "vision" and cfg["model"]["input"]["render"]["res"] == 12
    assert cfg["model"]["decoder"]["n_embd"] == 64  # --size tiny beats the preset's decoder


def test_config_files_with_unknown_keys_or_wrong_types_are_refused(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text(f"data: {tiny_corpus.path}\ntrain:\n  learning_rate: 0.1\n")
    assert main(["train", "--config", str(bad_key), "--out", str(tmp_path / "r")]) == 2
    assert "unknown config key(s) train.learning_rate" in capsys.readouterr().err
    bad_type = tmp_path / "bad_type.yaml"
    bad_type.write_text(f"data: {tiny_corpus.path}\ntrain:\n  batch_size: lots\n")
    assert main(["train", "--config", str(bad_type), "--out", str(tmp_path / "r")]) == 2
    assert "train.batch_size" in capsys.readouterr().err


def test_tensorboard_logs_every_evaluation(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "--data", str(tiny_corpus.path), "--input", "index", "--size", "tiny", "--batch-size", "16",
                 "--max-samples", "32", "--eval-every", "16", "--precision", "fp32", "--tensorboard",
                 "--out", str(out), "--quiet"]) == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("val_loss")]
    assert steps == [0, 16, 32]
