"""Export to plain transformers (same logits, loads without hotstart) and streaming generation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import train_tiny_vision_run
from transformers import AutoModelForCausalLM, AutoTokenizer

from hotstart.cli import main
from hotstart.data import PreparedCorpus
from hotstart.export import export_run, generate
from hotstart.train import load_run


@pytest.fixture(scope="module")
def vision_run(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_vision_run(tiny_corpus, tmp_path_factory.mktemp("export") / "run", "--encoder", "orig")


def test_exported_model_gives_our_logits(vision_run: Path, tmp_path: Path) -> None:
    export_run(vision_run, tmp_path / "hf")
    run = load_run(vision_run, progress=False)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = run.corpus.sequences(run.corpus.val_index[:4])[:, :-1]
    with torch.no_grad():
        ours, _ = run.model(ids)
        theirs = hf(input_ids=ids).logits
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    text = run.corpus.vocab.decode(ids[0, :20])
    assert tokenizer(text)["input_ids"] == ids[0, :20].tolist()
    assert tokenizer.decode(ids[0, :20]) == text
    assert (tmp_path / "hf" / "hotstart" / "render.json").is_file()


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
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]


def test_greedy_generation_is_deterministic_and_seeded_sampling_reproducible(vision_run: Path) -> None:
    run = load_run(vision_run, progress=False)
    vocab = run.corpus.vocab
    greedy = "".join(generate(run.model, vocab, "新闻", max_new=10, temperature=0))
    assert greedy == "".join(generate(run.model, vocab, "新闻", max_new=10, temperature=0))
    assert len(greedy) >= 10  # one token each; specials decode to their names
    a = "".join(generate(run.model, vocab, "新闻", max_new=10, top_k=5, seed=1))
    b = "".join(generate(run.model, vocab, "新闻", max_new=10, top_k=5, seed=1))
    assert a == b


def test_generate_command_streams_the_continuation(vision_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", str(vision_run), "--prompt", "中国", "--max-new", "5", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("中国") and len(out.strip()) >= 7
