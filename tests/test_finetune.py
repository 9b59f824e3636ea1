"""Downstream classification (`hotstart finetune`): the task readers, macro-F1, every kind of pretrained
run as a pooled encoder, fine-tuning that learns, seeds and a learning curve, and resuming."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_tiny_vision_run

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.tasks.classification import (
    FinetuneConfig,
    finetune,
    load_pretrained,
    load_task,
    macro_f1,
)


def write_task(folder: Path, rows: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, records in rows.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return folder


def separable_task(folder: Path, corpus: PreparedCorpus) -> Path:
    """Two labels told apart by which of two common characters a document repeats."""
    a, b = corpus.vocab.chars[0], corpus.vocab.chars[1]
    rng = np.random.default_rng(0)
    filler = corpus.vocab.chars[2:40]

    def docs(n: int) -> list[dict]:
        out = []
        for i in range(n):
            label = "yes" if i % 2 else "no"
            text = "".join(rng.choice(filler, 10)) + (a if label == "yes" else b) * 12
            out.append({"text": text, "label": label})
        return out

    return write_task(folder, {"train": docs(64), "dev": docs(16), "test": docs(16)})


def test_macro_f1_is_the_mean_of_per_label_f1() -> None:
    predicted, target = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0])
    # label 0: tp 1, fp 1, fn 1 -> 0.5; label 1: tp 2, fp 0, fn 1 -> 0.8; label 2: tp 1, fp 1, fn 0 -> 2/3
    assert macro_f1(predicted, target, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert macro_f1(target, target, 3) == 1.0


def test_the_builtin_task_has_the_packaged_splits_and_three_labels() -> None:
    task = load_task("inews-sentiment")
    assert task.labels == ["0", "1", "2"]
    assert {split: len(texts) for split, texts in task.texts.items()} == {"train": 5355, "dev": 999, "test": 999}
    assert np.bincount(task.targets["test"]).tolist() == [99, 494, 406]


def test_a_task_folder_is_read_with_labels_numbered_by_the_training_split(tmp_path: Path) -> None:
    rows = {"train": [{"text": "好的", "label": "pos"}, {"text": "坏的", "label": "neg"}, {"text": " ", "label": "neg"}],
            "dev": [{"text": "好", "label": "pos"}], "test": [{"text": "坏", "label": "neg"}]}
    task = load_task(str(write_task(tmp_path / "t", rows)))
    assert task.labels == ["neg", "pos"] and task.targets["train"].tolist() == [1, 0]
    assert task.skipped_empty == 1  # counted, not silently kept or lost


@pytest.mark.parametrize("rows, words", [
    ({"train": [{"text": "a", "label": 0}, {"text": "b", "label": 1}], "dev": [{"text": "c", "label": 2}],
      "test": [{"text": "d", "label": 0}]}, "dev has label(s) '2' that train has not"),
    ({"train": [{"text": "a", "label": 0}, {"label": 1}], "dev": [], "test": []}, 'train.jsonl line 2 has no string "text"'),
    ({"train": [{"text": "a", "label": 0}, {"text": "b"}], "dev": [], "test": []}, 'train.jsonl line 2 has no "label"'),
    ({"train": [{"text": "a", "label": 0}, {"text": "b", "label": 1}], "test": []}, "has no dev.jsonl"),
])
def test_a_bad_task_folder_is_refused_by_name(tmp_path: Path, rows: dict, words: str) -> None:
    with pytest.raises(HotStartError, match=re.escape(words)):
        load_task(str(write_task(tmp_path / "t", rows)))


@pytest.fixture(scope="module")
def runs(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny pretrained run of every kind fine-tuning reads."""
    tmp = tmp_path_factory.mktemp("runs")
    common = ["--data", str(tiny_corpus.path), "--batch-size", "8", "--max-samples", "32", "--eval-every", "16",
              "--dense-until", "32", "--eval-sequences", "8", "--precision", "fp32", "--device", "cpu", "--quiet"]
    assert main(["train", "--input", "index", "--size", "tiny", *common, "--out", str(tmp / "index")]) == 0
    assert main(["train", "--objective", "mae", "--size", "tiny", "--max-patches", "49", *common, "--out", str(tmp / "mae")]) == 0
    assert main(["train", "--objective", "mlm", "--size", "tiny", *common, "--out", str(tmp / "mlm")]) == 0
    return {"index": tmp / "index", "mae": tmp / "mae", "mlm": tmp / "mlm",
            "vision": train_tiny_vision_run(tiny_corpus, tmp / "vision")}


@pytest.mark.parametrize("kind, encoder", [("index", "index"), ("vision", "vision"), ("mae", "pixel-mae"), ("mlm", "char-bert")])
def test_every_kind_of_run_reads_a_document_as_one_vector_that_depends_on_its_text(runs: dict[str, Path], kind: str,
                                                                                     encoder: str) -> None:
    pre = load_pretrained(runs[kind])
    assert pre.encoder.kind == encoder
    chars = pre.vocab.chars
    docs = [pre.vocab.encode("".join(chars[:20])), pre.vocab.encode("".join(chars[20:30])), pre.vocab.encode("".join(chars[:20]))]
    with torch.no_grad():
        pooled = pre.encoder.eval()(*pre.encoder.inputs(docs))
    assert pooled.shape == (3, pre.encoder.width) and torch.isfinite(pooled).all()
    torch.testing.assert_close(pooled[0], pooled[2])  # no masking or noise at fine-tuning time
    assert not torch.allclose(pooled[0], pooled[1])


def test_fine_tuning_learns_a_separable_task_from_every_kind_of_run(runs: dict[str, Path], tiny_corpus: PreparedCorpus,
                                                                    tmp_path: Path) -> None:
    task = separable_task(tmp_path / "task", tiny_corpus)
    for kind in ("index", "mlm"):
        cfg = FinetuneConfig(task=str(task), seeds=[0], epochs=8, lr=1e-3, batch_size=8, precision="fp32", device="cpu")
        result = finetune(runs[kind], cfg, tmp_path / kind, progress=False)
        assert result["curve"][0]["test_acc"] >= 0.9, kind  # chance is 0.5


def test_a_linear_probe_trains_only_the_layer_on_fixed_vectors_and_learns(runs: dict[str, Path],
                                                                          tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from hotstart.tasks import classification

    task = separable_task(tmp_path / "task", tiny_corpus)
    calls = []
    real = classification.pooled_features
    monkeypatch.setattr(classification, "pooled_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = FinetuneConfig(task=str(task), seeds=[0, 1], mode="probe", batch_size=8, precision="fp32", device="cpu")
    result = finetune(runs["mlm"], cfg, tmp_path / "probe", progress=False)
    assert len(calls) == 3  # each split's vectors once, not once per seed or epoch
    assert result["mode"] == "probe" and result["epochs"] == 30
    assert result["curve"][0]["test_acc"] >= 0.9


def test_seeds_and_a_learning_curve_come_from_one_command_and_a_rerun_resumes(runs: dict[str, Path],
                                                                               tiny_corpus: PreparedCorpus,
                                                                               tmp_path: Path) -> None:
    task = separable_task(tmp_path / "task", tiny_corpus)
    out = tmp_path / "ft"
    args = ["finetune", str(runs["mae"]), "--task", str(task), "--seeds", "0,1", "--train-examples", "8,1000", "--epochs", "1",
            "--batch-size", "8", "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(args) == 0
    result = json.loads((out / "finetune.json").read_text())
    assert [(p["train_examples"], p["seeds"]) for p in result["curve"]] == [(8, 2), (64, 2)]  # 1000 -> all 64
    assert {(r["train_examples"], r["seed"]) for r in result["results"]} == {(8, 0), (8, 1), (64, 0), (64, 1)}
    for point in result["curve"]:
        values = [r["test_acc"] for r in result["results"] if r["train_examples"] == point["train_examples"]]
        assert point["test_acc"] == pytest.approx(np.mean(values)) and point["test_acc_sd"] == pytest.approx(np.std(values, ddof=1))
    before = (out / "results.jsonl").read_text()
    assert main(args) == 0  # everything done: nothing fine-tuned again
    assert (out / "results.jsonl").read_text() == before
    assert main([*args[:-3], "--lr", "1e-3", "--out", str(out), "--quiet"]) == 2  # other settings: refused


def test_a_folder_that_is_not_a_pretraining_run_is_refused(runs: dict[str, Path], tiny_corpus: PreparedCorpus,
                                                           tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["finetune", str(tiny_corpus.path), "--task", "inews-sentiment", "--out", str(tmp_path / "x")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    task = separable_task(tmp_path / "task", tiny_corpus)
    assert main(["finetune", str(runs["index"]), "--task", str(task), "--epochs", "1", "--seeds", "0", "--device", "cpu",
                 "--out", str(tmp_path / "ft"), "--quiet"]) == 0
    assert main(["finetune", str(tmp_path / "ft"), "--task", str(task), "--out", str(tmp_path / "y")]) == 2
    assert "is a fine-tuning folder" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["index", "vision", "mae", "mlm"])
def test_the_classifier_keeps_pretrainings_weight_decay_exemptions(runs: dict[str, Path], kind: str) -> None:
    from hotstart.tasks.classification import Classifier

    model = Classifier(load_pretrained(runs[kind]).encoder, 3, 0.1)
    names = dict(model.named_parameters())
    exempt = model.no_weight_decay()
    assert exempt and exempt <= set(names)  # every name is a real parameter
    if kind == "mae":
        assert "encoder.vit.embeddings.cls_token" in exempt and not any("decoder" in n for n in names)  # MAE decoder left behind


def test_the_inews_task_reads_its_text_as_the_pretraining_corpus_version_did() -> None:
    escaped = lambda task: sum(text.count("\\n") for split in task.texts.values() for text in split)
    assert escaped(load_task("inews-sentiment", 1)) > 0 and escaped(load_task("inews-sentiment", 2)) == 0


def test_the_pixel_m4_recipe_tries_its_learning_rates_keeps_the_best_on_dev_and_stops_early(
        runs: dict[str, Path], tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    from hotstart.tasks.classification import PIXEL_M4_LRS

    task = separable_task(tmp_path / "task", tiny_corpus)
    cfg = FinetuneConfig(task=str(task), seeds=[0], epochs=3, batch_size=16, recipe="pixel-m4", patience=1,
                         precision="fp32", device="cpu")
    result = finetune(runs["mae"], cfg, tmp_path / "m4", progress=False)
    (row,) = result["results"]
    assert [float(lr) for lr in row["lr_tried"]] == list(PIXEL_M4_LRS)
    assert row["dev_macro_f1"] == max(row["lr_tried"].values()) and row["lr"] in PIXEL_M4_LRS
    assert row["epochs_run"] <= 3 and row["skipped_steps"] == 0
    spread = result["pooled_spread"]  # the documents' pooled vectors, before fine-tuning
    assert spread["documents"] == 16 and spread["sd_across_documents"] > 0 and -1 <= spread["mean_pairwise_cosine"] <= 1
    assert result["majority"]["test_macro_f1"] > 0


def test_the_pooled_spread_tells_a_collapsed_encoder_from_a_spread_one() -> None:
    from hotstart.tasks.classification import pooled_spread

    collapsed = pooled_spread(np.ones((20, 8)))
    assert collapsed["sd_across_documents"] == 0 and collapsed["mean_pairwise_cosine"] == pytest.approx(1.0)
    spread = pooled_spread(np.random.default_rng(0).normal(size=(200, 64)))
    assert spread["sd_across_documents"] == pytest.approx(1.0, abs=0.1) and abs(spread["mean_pairwise_cosine"]) < 0.05


def test_a_fine_tuning_whose_every_step_is_not_finite_stops_with_an_error(runs: dict[str, Path],
                                                                          tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from hotstart.tasks.classification import Classifier

    task = separable_task(tmp_path / "task", tiny_corpus)
    monkeypatch.setattr(Classifier, "forward", lambda self, *inputs: self.head(self.encoder(*inputs)) * float("nan"))
    cfg = FinetuneConfig(task=str(task), seeds=[0], epochs=1, lr=1e-3, batch_size=16, precision="fp32", device="cpu")
    with pytest.raises(HotStartError, match="skipped every step of epoch 1"):
        finetune(runs["index"], cfg, tmp_path / "nan", progress=False)


def test_the_linear_schedule_warms_up_then_falls_in_a_straight_line_to_its_floor() -> None:
    from hotstart.training.config import TrainConfig
    from hotstart.training.loop import lr_at

    cfg = TrainConfig(batch_size=1, lr_max=1.0, schedule="linear", warmup_samples=10, min_lr_ratio=0.0)
    assert lr_at(4, cfg, 110) == pytest.approx(0.5)  # warm-up: (step + 1) / 10
    assert lr_at(10, cfg, 110) == pytest.approx(1.0) and lr_at(60, cfg, 110) == pytest.approx(0.5)
    assert lr_at(110, cfg, 110) == pytest.approx(0.0)
    assert lr_at(35, cfg, 110) == pytest.approx(0.75)  # a quarter of the way: a straight line, not cosine's 0.854
