"""PIXEL-M4's masked autoencoder trained by the one training loop (`hotstart train --objective mae`):
the run folder, reconstruction plots, masks drawn from (seed, step, sequence), exact resume, and the
options that belong to one objective refused for the other."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.models.mae import MAEConfig
from hotstart.render.line import LineRenderConfig
from hotstart.training.config import TrainConfig, line_train_defaults
from hotstart.training.mae_run import MAERunConfig, MaskedPatches

TIMING = ("samples_per_s", "wall_s")


def mae_args(corpus: PreparedCorpus, out: Path, *extra: str) -> list[str]:
    """A tiny MAE on lines of 49 patches (a 7 x 7 grid): the corpus's 32-character sequences fit."""
    return ["train", "--objective", "mae", "--data", str(corpus.path), "--size", "tiny", "--max-patches", "49",
            "--batch-size", "8", "--max-samples", "48", "--eval-every", "16", "--dense-until", "48",
            "--eval-sequences", "8", "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet", *extra]


def objective(corpus: PreparedCorpus, **train: object) -> MaskedPatches:
    cfg = MAERunConfig(data=str(corpus.path), model=MAEConfig(size="tiny", line=LineRenderConfig(max_patches=49)),
                       train=TrainConfig(**{**vars(line_train_defaults()), "eval_sequences": 8, **train}))
    made = MaskedPatches(cfg, corpus)
    made.check()
    return made


def rows_without_timing(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_an_mae_run_writes_its_folder_and_a_reconstruction_at_every_evaluation(tiny_corpus: PreparedCorpus,
                                                                               tmp_path: Path) -> None:
    run = tmp_path / "mae"
    assert main(mae_args(tiny_corpus, run)) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["objective"] == "mae" and config["model"]["size"] == "tiny"
    assert config["model"]["line"]["max_patches"] == 49 and config["train"]["curriculum"] is False
    rows = rows_without_timing(run)
    assert [r["samples"] for r in rows] == [0, 16, 32, 48]
    assert set(rows[0]) == {"samples", "step", "epoch", "lr", "train_loss", "val_loss", "floor_zero_loss", "floor_mean_loss"}
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]  # a few steps already lower the reconstruction error
    # the floors beside every evaluation: the same at each; the mean patch predicts better than zeros
    for key in ("floor_zero_loss", "floor_mean_loss"):
        assert len({r[key] for r in rows}) == 1, key
    assert 0 < rows[0]["floor_mean_loss"] <= rows[0]["floor_zero_loss"]
    plots = sorted(p.name for p in (run / "reconstructions").iterdir())
    assert plots == [f"{r['samples']:09d}.png" for r in rows]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["objective"] == "mae" and summary["val_lines"] == 8 and summary["stop_reason"] == "max_samples"
    assert summary["parameters"]["total"] == summary["parameters"]["encoder"] + summary["parameters"]["decoder"]
    render = json.loads((run / "render.json").read_text())
    assert render["max_patches"] == 49 and all(len(font["sha256"]) == 64 for font in render["fonts"])
    assert {"best", "last", "state"} <= {p.stem for p in (run / "checkpoints").iterdir()}


def test_masks_come_from_seed_step_and_sequence_so_shards_and_resumes_agree(tiny_corpus: PreparedCorpus) -> None:
    made = objective(tiny_corpus)
    index = tiny_corpus.train_index[:6]
    patches, mask = made.batch(index, step=3)
    again, same = made.batch(index, step=3)
    assert torch.equal(patches, again) and torch.equal(mask, same)
    assert torch.equal(made.batch(index[2:4], step=3)[1], mask[2:4])  # one process's slice under torchrun
    assert not torch.equal(made.batch(index, step=4)[1], mask)  # another step, other masks
    n_masked = made.config.model.n_masked
    assert mask.sum(dim=1).tolist() == [n_masked] * 6
    assert not torch.equal(objective(tiny_corpus, seed=1).batch(index, step=3)[1], mask)


def test_validation_is_deterministic_and_skips_training_masks(tiny_corpus: PreparedCorpus) -> None:
    from hotstart.training.precision import resolve

    made = objective(tiny_corpus)
    torch.manual_seed(0)
    model = made.build_model(progress=False)
    prec = resolve("cpu", "fp32")
    first, second = made.evaluate(model, prec), made.evaluate(model, prec)
    assert first == second and np.isfinite(first["val_loss"]) and model.training


def test_a_killed_mae_run_resumes_to_the_uninterrupted_metrics(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(mae_args(tiny_corpus, tmp_path / "reference")) == 0
    loop = importlib.import_module("hotstart.training.loop")
    real, calls = loop.save_training_state, []

    def killed_after_the_second_state(path, *args, **kwargs):
        real(path, *args, **kwargs)
        calls.append(path)
        if len(calls) == 2:  # as a kill right after the state is saved, before its metrics row
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_training_state", killed_after_the_second_state)
    assert main(mae_args(tiny_corpus, tmp_path / "killed")) == 130  # the CLI's exit status for an interrupt
    monkeypatch.setattr(loop, "save_training_state", real)
    assert len(rows_without_timing(tmp_path / "killed")) == 1 and not (tmp_path / "killed" / "summary.json").exists()
    assert main([*mae_args(tiny_corpus, tmp_path / "killed"), "--resume"]) == 0
    assert rows_without_timing(tmp_path / "killed") == rows_without_timing(tmp_path / "reference")


def test_resuming_a_run_as_another_objective_is_refused(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "mae"
    assert main(mae_args(tiny_corpus, run, "--max-samples", "16")) == 0
    (run / "summary.json").unlink()
    capsys.readouterr()
    assert main(["train", "--data", str(tiny_corpus.path), "--size", "tiny", "--max-samples", "16", "--out", str(run),
                 "--resume", "--quiet"]) == 2
    assert "it is a run of --objective mae, not next-char" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["eval", str(run), "--quiet"]) == 2
    assert "is a run of --objective mae; this command reads next-char runs" in capsys.readouterr().err


@pytest.mark.parametrize("extra, words", [(["--encoder", "orig"], "--encoder is not an option of --objective mae"),
                                          (["--preset", "rq1-index"], "--preset names a next-char experiment"),
                                          (["--freeze-decoder"], "an mae run has none to freeze"),
                                          (["--max-patches", "50"], "not a square number")])
def test_options_of_the_other_objective_are_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture, extra: list[str],
                                                                words: str) -> None:
    assert main(mae_args(tiny_corpus, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]


def test_an_mae_option_on_a_next_char_run_is_refused(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--data", str(tiny_corpus.path), "--mask-ratio", "0.5", "--out", str(tmp_path / "r")]) == 2
    assert "--mask-ratio is not an option of --objective next-char runs" in capsys.readouterr().err


def test_the_optimizer_does_not_decay_the_mae_tokens(tiny_corpus: PreparedCorpus) -> None:
    from hotstart.training.loop import make_optimizer

    made = objective(tiny_corpus)
    model = made.build_model(progress=False)
    decayed = {id(p) for g in make_optimizer(model, made.config.train).param_groups if g["weight_decay"] > 0
               for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["mae.vit.embeddings.cls_token"]) not in decayed and id(named["mae.decoder.mask_token"]) not in decayed
    assert id(named["mae.vit.embeddings.patch_embeddings.projection.weight"]) in decayed


def test_a_bad_objective_in_a_config_file_is_refused(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "run.yaml").write_text(f"data: {tiny_corpus.path}\nobjective: diffusion\n")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "r")]) == 2
    assert "unknown objective 'diffusion'; choose one of next-char, mae, mlm, next-patch" in capsys.readouterr().err
    with pytest.raises(HotStartError, match="unknown objective"):
        from hotstart.training.loop import train

        train(MAERunConfig(data=str(tiny_corpus.path), objective="diffusion"), tmp_path / "r2")


def test_reconstructions_are_read_back_between_the_floor_and_the_real_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    from hotstart.analysis.reconstruction import reconstruction_readback
    from hotstart.models.mae import PixelMAE

    run = tmp_path / "mae"
    assert main(mae_args(tiny_corpus, run)) == 0
    grey = reconstruction_readback(run, count=4)
    assert grey["lines"] == 4 and 0 < grey["masked_share"] < 1
    assert grey["ocr_cer_real"] < grey["ocr_cer_floor"]  # masking costs the reader characters
    assert grey["recovered"] < 0.5  # 48 sequences of training redraw none of them
    # a model that redraws every masked patch exactly (the model replaced, to isolate the measure) recovers all
    monkeypatch.setattr(PixelMAE, "reconstruct", lambda self, patches, mask: patches)
    perfect = reconstruction_readback(run, count=4)
    assert perfect["ocr_cer_reconstruction"] == perfect["ocr_cer_real"] and perfect["recovered"] == 1.0
    with pytest.raises(HotStartError, match="is not a run folder"):
        reconstruction_readback(tmp_path / "nothing")
