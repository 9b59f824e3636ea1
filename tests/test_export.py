"""Export to plain transformers (same logits, loads without hotstart) and streaming generation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import assert_export_gives_our_logits, train_tiny_vision_run

from hotstart.cli import main
from hotstart.data.prepared import PAD_ID, UNK_ID, PreparedCorpus
from hotstart.export import export_run, generate
from hotstart.training.run import LoadedRun, load_run


@pytest.fixture(scope="module")
def vision_run(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_vision_run(tiny_corpus, tmp_path_factory.mktemp("export") / "run", "--encoder", "orig")


def test_exported_model_gives_our_logits(vision_run: Path, tmp_path: Path) -> None:
    export_run(vision_run, tmp_path / "hf")
    assert_export_gives_our_logits(vision_run, tmp_path / "hf")
    assert (tmp_path / "hf" / "hotstart" / "render.json").is_file()


@pytest.mark.subprocess
def test_exported_folder_loads_and_generates_in_a_process_without_hotstart(vision_run: Path, tmp_path: Path) -> None:
    export_run(vision_run, tmp_path / "hf")
    script = textwrap.dedent(f"""
        import sys
        from transformers import pipeline
        generate = pipeline("text-generation", model={str(tmp_path / 'hf')!r})
        out = generate("新闻", max_new_tokens=8, do_sample=False)[0]["generated_text"]
        assert out.startswith("新闻") and len(out) > 2, out
        assert not any(name.startswith("hotstart") for name in sys.modules), "hotstart was imported"
        print("OK", out)
    """)
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # never the network
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False,
                            cwd=tmp_path, env=offline)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]


@pytest.fixture()
def lively_run(vision_run: Path) -> LoadedRun:
    """The run with every weight redrawn from N(0, 0.2): its next-token choice changes with the
    context. (The tiny trained run predicts one token everywhere, which would hide a generation step
    that reads the wrong position or drops a token from its context.)"""
    run = load_run(vision_run, progress=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in run.model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=generator))
    return run


def _generated_and_logits(run: LoadedRun, prompt: str, pieces: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The IDs of the generated `pieces` and, from one forward pass over prompt + pieces (no
    generation loop), the logits that predict each of them, with padding (never generated) masked."""
    vocab = run.corpus.vocab
    token_id = {token: i for i, token in enumerate(vocab.tokens)}
    assert all(piece in token_id for piece in pieces), pieces  # each piece is exactly one token
    ids = vocab.encode(prompt).tolist() + [token_id[piece] for piece in pieces]
    run.model.eval()
    with torch.no_grad():
        logits, _ = run.model(torch.tensor([ids[:-1]]))
    logits = logits[0, len(prompt) - 1:].float()  # row k predicts the k-th generated piece
    logits[:, PAD_ID] = -float("inf")
    return torch.tensor(ids[len(prompt):]), logits


def test_greedy_generation_takes_the_most_likely_token_at_every_step(lively_run: LoadedRun) -> None:
    vocab = lively_run.corpus.vocab
    assert UNK_ID not in vocab.encode("新闻").tolist()  # a prompt the model knows
    pieces = list(generate(lively_run.model, vocab, "新闻", max_new=10, temperature=0))
    assert len(pieces) == 10 and len(set(pieces)) >= 3, pieces  # one token a step, and the context matters
    generated, logits = _generated_and_logits(lively_run, "新闻", pieces)
    chosen = logits.gather(1, generated[:, None])[:, 0]
    # the most likely token (up to float rounding between a growing context and one pass over it all)
    assert torch.all(chosen >= logits.max(dim=-1).values - 1e-5), (pieces, logits.argmax(dim=-1))


def test_seeded_sampling_is_reproducible_and_stays_within_the_top_k(lively_run: LoadedRun) -> None:
    vocab = lively_run.corpus.vocab
    samples = [list(generate(lively_run.model, vocab, "新闻", max_new=10, top_k=5, seed=seed)) for seed in (1, 1, 2)]
    assert samples[0] == samples[1] and len(samples[0]) == 10
    assert samples[0] != samples[2]  # the seed decides the sample
    for pieces in samples:
        generated, logits = _generated_and_logits(lively_run, "新闻", pieces)
        fifth = logits.topk(5, dim=-1).values[:, -1]
        assert torch.all(logits.gather(1, generated[:, None])[:, 0] >= fifth - 1e-5), pieces


def test_generate_command_streams_the_prompt_and_the_greedy_continuation(vision_run: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", str(vision_run), "--prompt", "中国", "--max-new", "5", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    run = load_run(vision_run, progress=False)
    continuation = "".join(generate(run.model, run.corpus.vocab, "中国", max_new=5, temperature=0))
    assert out == "中国" + continuation + "\n"
