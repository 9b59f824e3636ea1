"""Input-vector spread: the statistics themselves, the `init` checkpoint, the command and the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import train_tiny_vision_run

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.experiments.embeddings import read_embeddings
from hotstart.experiments.report import write_report
from hotstart.models.embedding_stats import embedding_spread
from hotstart.plot import read_metrics
from hotstart.training.evaluate import evaluate_run
from hotstart.training.run import load_run


def test_identical_rows_are_collapsed_and_orthogonal_rows_are_not() -> None:
    same = torch.ones(3 + 50, 8)
    stats = embedding_spread(same)
    assert stats["mean_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert stats["near_duplicate_share"] == 1.0
    assert stats["effective_rank"] == pytest.approx(1.0, abs=0.01)
    distinct = torch.cat([torch.ones(3, 16), torch.eye(16)])  # specials alike, characters orthogonal
    stats = embedding_spread(distinct)
    assert stats["characters"] == 16
    assert stats["mean_cosine"] == pytest.approx(0.0, abs=1e-4)
    assert stats["near_duplicate_share"] == 0.0
    assert stats["effective_rank"] > 10


def test_frequent_characters_are_ranked_by_count() -> None:
    # five characters share one vector and are the most frequent; the other eleven are orthogonal
    rows = torch.cat([torch.zeros(3, 16), torch.eye(16)])
    rows[3 + 12 :] = rows[3]
    counts = [0, 0, 0] + [1] * 12 + [100] * 4
    counts[3] = 100  # row 3 is the fifth member of the shared group
    stats = embedding_spread(rows, counts, top=4)
    assert stats["mean_cosine_top"] == pytest.approx(1.0, abs=1e-4)
    assert stats["mean_cosine"] < 0.2
    unordered = embedding_spread(rows, top=4)  # without counts: the first rows
    assert unordered["mean_cosine_top"] < 0.6


def test_statistics_without_a_full_similarity_matrix_match_the_matrix() -> None:
    torch.manual_seed(0)
    rows = torch.randn(2500, 12) + 0.5  # more rows than one nearest-neighbour block
    rows[1000] = rows[2400] * 3  # one pair across blocks points the same way
    stats = embedding_spread(rows, skip=0)
    unit = torch.nn.functional.normalize(rows, dim=1)
    cosine = unit @ unit.T
    n = rows.shape[0]
    assert stats["mean_cosine"] == pytest.approx(float((cosine.sum() - n) / (n * (n - 1))), abs=1e-4)
    cosine.fill_diagonal_(-2.0)
    assert stats["near_duplicate_share"] == pytest.approx(float((cosine.max(1).values >= 0.99).float().mean()), abs=1e-4)
    assert stats["near_duplicate_share"] >= 2 / n


def test_too_few_rows_or_mismatched_counts_are_clear_errors() -> None:
    with pytest.raises(HotStartError, match="at least 2 characters"):
        embedding_spread(torch.ones(4, 8))
    with pytest.raises(HotStartError, match="counts for a table"):
        embedding_spread(torch.eye(8), counts=[1, 2])


@pytest.fixture(scope="module")
def vision_run(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_vision_run(tiny_corpus, tmp_path_factory.mktemp("embeddings") / "run", "--seed", "3")


def test_init_checkpoint_is_the_weights_training_started_from(vision_run: Path) -> None:
    start = read_metrics(vision_run)[0]
    assert start["samples"] == 0
    again = evaluate_run(vision_run, checkpoint="init", sequences=None, precision="fp32", device="cpu", progress=False)
    assert again["val_loss"] == pytest.approx(start["val_loss"], abs=1e-5)
    trained = load_run(vision_run, checkpoint="best", progress=False).model.state_dict()
    fresh = load_run(vision_run, checkpoint="init", progress=False).model.state_dict()
    assert any(not torch.equal(trained[k], fresh[k]) for k in trained)


def test_command_saves_each_checkpoint_and_the_report_shows_it(vision_run: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "vision-tiny"
    shutil.copytree(vision_run, run)
    text = write_report([run], tmp_path / "before").read_text()
    assert "No run here has an embeddings.json" in text
    assert main(["embeddings", str(run), "--quiet"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["checkpoint"] for p in printed] == ["init", "best"]
    saved = read_embeddings(run)
    assert set(saved) == {"init", "best"}
    assert saved["best"]["command"] == f"hotstart embeddings {run} --checkpoint best"
    assert saved["init"]["mean_cosine"] == printed[0]["mean_cosine"]
    rows = read_metrics(run)  # training records the same statistic at every evaluation
    best_row = min(rows, key=lambda r: r["val_loss"])
    assert rows[0]["input_mean_cosine"] == pytest.approx(saved["init"]["mean_cosine"], abs=2e-4)
    assert best_row["input_mean_cosine"] == pytest.approx(saved["best"]["mean_cosine"], abs=2e-4)
    assert 0.0 <= best_row["input_near_duplicates"] <= 1.0
    text = write_report([run], tmp_path / "after").read_text()
    section = text.split("## Input vectors")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| {run.name} |"))
    assert f"{saved['init']['mean_cosine']:.2f} → {saved['best']['mean_cosine']:.2f}" in row
    assert (tmp_path / "after" / "embeddings.csv").read_text().count("\n") == 3  # header + init + best


def test_no_save_only_prints(vision_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(vision_run, run)
    assert main(["embeddings", str(run), "--checkpoint", "last", "--no-save", "--quiet"]) == 0
    assert read_embeddings(run) is None


def test_a_run_without_its_vocab_copy_uses_the_corpus_vocabulary(vision_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(vision_run, run)
    (run / "vocab.json").unlink()  # as in a committed results folder
    loaded = load_run(run, progress=False)
    assert loaded.corpus.vocab.tokens == load_run(vision_run, progress=False).corpus.vocab.tokens
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace(f"vocab_size: {len(loaded.corpus.vocab)}", "vocab_size: 7"))
    with pytest.raises(HotStartError, match="no vocab.json"):
        load_run(run, progress=False)
