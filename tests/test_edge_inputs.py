"""Edge inputs: a font file overwritten under a run, a vocabulary too large for uint16, a GBK corpus,
exporting an index run, and prompts longer than the decoder's position table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from conftest import assert_export_gives_our_logits, train_tiny_vision_run

from hotstart.cli import main
from hotstart.data.prepared import PAD_ID, SPECIALS, PreparedCorpus
from hotstart.render.fonts import default_font
from hotstart.render.glyph import GlyphRenderer, RenderConfig
from hotstart.training.run import load_run
from hotstart.use.generate import generate

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
REGULAR, BOLD = FONTS / "DejaVuSans.ttf", FONTS / "DejaVuSans-Bold.ttf"  # the same em box: the same point size


@pytest.fixture
def glyph_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A glyph cache of this test's own, so its files can be counted."""
    path = tmp_path / "cache"
    monkeypatch.setenv("HOTSTART_CACHE", str(path))
    return path


# ---------------------------------------------------------------- a font overwritten at the same path


def replace_file(source: Path, target: Path) -> None:
    """Put a copy of `source` at `target` as an installer or editor saves: a new file under the old name
    (copying over the old file in place is the subprocess test's case: that one could crash the process)."""
    tmp = target.with_name(target.name + ".new")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def test_a_font_replaced_at_the_same_path_gets_a_new_cache_key_and_its_own_glyphs(tmp_path: Path,
                                                                                  glyph_cache: Path) -> None:
    font, tokens = tmp_path / "font.ttf", [*SPECIALS, *"AgQ&7中"]
    shutil.copyfile(REGULAR, font)
    before = GlyphRenderer(RenderConfig(res=16, font=str(font)))
    old = before.render_bank(tokens, SPECIALS, progress=False)
    replace_file(BOLD, font)
    after = GlyphRenderer(RenderConfig(res=16, font=str(font)))
    new = after.render_bank(tokens, SPECIALS, progress=False)

    assert after.font.sha256 != before.font.sha256
    assert after._cache_key(tokens, list(SPECIALS)) != before._cache_key(tokens, list(SPECIALS))
    assert len(list((glyph_cache / "glyphs").glob("*.npz"))) == 2  # the old bank is not reused
    fresh = GlyphRenderer(RenderConfig(res=16, font=str(BOLD))).render_bank(tokens, SPECIALS, tmp_path / "other",
                                                                             progress=False)
    np.testing.assert_array_equal(new.glyphs, fresh.glyphs)  # drawn from the new file, not a stale face
    assert not np.array_equal(new.glyphs, old.glyphs)


@pytest.mark.subprocess
def test_a_font_copied_over_in_place_draws_the_new_glyphs_without_crashing(tmp_path: Path) -> None:
    # `cp` rewrites the same file; FreeType reads glyphs lazily, so a face opened before would read the
    # new bytes at the old offsets (a segmentation fault here before fonts.py keyed faces by file)
    script = textwrap.dedent("""
        import shutil, sys
        import numpy as np
        from hotstart.render.glyph import GlyphRenderer, RenderConfig
        font, regular, bold = sys.argv[1:4]
        shutil.copyfile(regular, font)
        before = GlyphRenderer(RenderConfig(res=16, font=font)).render("A")
        shutil.copyfile(bold, font)
        after = GlyphRenderer(RenderConfig(res=16, font=font)).render("A")
        fresh = GlyphRenderer(RenderConfig(res=16, font=bold)).render("A")
        assert np.array_equal(after, fresh) and not np.array_equal(before, after)
        print("OK")
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "font.ttf"), str(REGULAR), str(BOLD)],
                            capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "HOTSTART_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0 and "OK" in result.stdout, (result.returncode, result.stderr[-2000:])


def test_loading_a_run_whose_font_file_was_overwritten_warns_that_the_font_differs(
        tiny_corpus: PreparedCorpus, tmp_path: Path, glyph_cache: Path, capsys: pytest.CaptureFixture) -> None:
    font = tmp_path / "font.ttc"
    shutil.copyfile(default_font()[0], font)  # Noto Sans CJK, face 0
    run = train_tiny_vision_run(tiny_corpus, tmp_path / "run", "--font", str(font), "--face", "0")
    eval_args = ["eval", str(run), "--sequences", "8", "--device", "cpu", "--precision", "fp32", "--quiet"]
    capsys.readouterr()
    assert main(eval_args) == 0
    assert "differs" not in capsys.readouterr().err  # the same file: no warning

    replace_file(REGULAR, font)  # another font under the run's font path
    assert main(eval_args) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "differs" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: font {font} differs from the one run {run}")
    assert "Noto Sans CJK" in warnings[0]  # names the font the run was trained with
    assert len(list((glyph_cache / "glyphs").glob("*.npz"))) == 2  # the new file's glyphs, under a new key


# ---------------------------------------------------------------- a vocabulary past 65,535 entries


@pytest.mark.slow
def test_a_vocabulary_past_65535_entries_is_stored_as_uint32_and_trains_and_evaluates(
        tmp_path: Path, glyph_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # every CJK ideograph of the basic block, Extension A and Extension B once: 70,304 characters
    codes = [*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000), *range(0x20000, 0x2A6E0)]
    chars = np.array([chr(c) for c in codes])
    np.random.default_rng(0).shuffle(chars)
    lines = ["".join(chars[i: i + 64]) for i in range(0, len(chars), 64)]
    (tmp_path / "cjk.txt").write_text("\n".join(lines), encoding="utf-8")
    data = tmp_path / "data"
    assert main(["prepare", "--corpus", str(tmp_path / "cjk.txt"), "--out", str(data), "--min-freq", "1",
                 "--seq-len", "32", "--val-sequences", "8", "--split-lines", "--quiet"]) == 0
    corpus = PreparedCorpus.load(data)
    assert len(corpus.vocab) == len(codes) + len(SPECIALS) and corpus.meta["dtype"] == "uint32"
    assert (data / "tokens.bin").stat().st_size == 4 * corpus.meta["n_tokens"]
    # every id round-trips, those above 65,535 included: the stream decodes to the text
    assert int(np.asarray(corpus.tokens).max()) == len(corpus.vocab) - 1
    assert corpus.vocab.decode(np.asarray(corpus.tokens)) == "<sep>".join(lines) + "<sep>"
    assert int(corpus.sequences(np.arange(corpus.n_sequences)).max()) > 65535

    # The input-vector statistics of every evaluation compare all pairs of characters: ~30 s at this
    # size on 2 cores. Here they are taken over the first 1,000 characters only.
    from hotstart.training import next_char

    real = next_char.embedding_spread
    monkeypatch.setattr(next_char, "embedding_spread", lambda table, *a, **k: real(table[:1003], *a, **k))
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--size", "tiny", "--batch-size", "8", "--max-samples", "16",
                 "--eval-every", "8", "--eval-sequences", "8", "--schedule", "cosine", "--warmup-samples", "8",
                 "--precision", "fp32", "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["samples"] == 16 and summary["stop_reason"] == "max_samples"
    assert summary["parameters"]["lm_head"] == len(corpus.vocab) * 64
    capsys.readouterr()
    assert main(["eval", str(run), "--sequences", "8", "--device", "cpu", "--precision", "fp32", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["val_tokens"] == 8 * 31
    assert result["val_loss"] == pytest.approx(summary["best"]["val_loss"], rel=1e-5)
    # every validation target is a character seen once, so nothing is learnt: about ln(V)
    assert abs(result["val_loss"] - np.log(len(corpus.vocab))) < 1.0


# ---------------------------------------------------------------- GBK


def test_prepare_with_encoding_gbk_gives_the_tokens_of_the_utf8_file(news_text_file: Path, tmp_path: Path) -> None:
    raw = news_text_file.read_text(encoding="utf-8").encode("gbk", errors="replace")  # 10 characters GBK lacks -> ?
    (tmp_path / "gbk.txt").write_bytes(raw)
    (tmp_path / "utf8.txt").write_text(raw.decode("gbk"), encoding="utf-8")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the files differ in bytes, not only in name
    common = ["--seq-len", "32", "--val-sequences", "32", "--min-freq", "2", "--split-lines", "--quiet"]
    assert main(["prepare", "--corpus", str(tmp_path / "gbk.txt"), "--encoding", "gbk", "--out", str(tmp_path / "a"),
                 *common]) == 0
    assert main(["prepare", "--corpus", str(tmp_path / "utf8.txt"), "--out", str(tmp_path / "b"), *common]) == 0
    gbk, utf8 = PreparedCorpus.load(tmp_path / "a"), PreparedCorpus.load(tmp_path / "b")
    assert gbk.vocab.tokens == utf8.vocab.tokens and gbk.vocab.counts == utf8.vocab.counts
    assert len(gbk.vocab) > 1000 and "新" in gbk.vocab.tokens
    assert (tmp_path / "a" / "tokens.bin").read_bytes() == (tmp_path / "b" / "tokens.bin").read_bytes()
    assert np.array_equal(gbk.val_index, utf8.val_index)
    assert gbk.meta["config"]["encoding"] == "gbk" and gbk.meta["n_chars"] == utf8.meta["n_chars"]


# ---------------------------------------------------------------- index runs: export, long prompts


@pytest.fixture(scope="module")
def index_run(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "run"
    assert main(["train", "--data", str(tiny_corpus.path), "--size", "tiny", "--batch-size", "16", "--max-samples", "64",
                 "--eval-every", "32", "--schedule", "cosine", "--warmup-samples", "16", "--precision", "fp32",
                 "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    return out


def test_an_exported_index_run_loads_in_transformers_and_gives_our_logits(index_run: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(index_run), "--out", str(tmp_path / "hf")]) == 0
    assert "wrote" in capsys.readouterr().out
    run, hf = assert_export_gives_our_logits(index_run, tmp_path / "hf")
    torch.testing.assert_close(hf.transformer.wte.weight, run.model.input.wte.weight)  # the index table, as it is
    assert not (tmp_path / "hf" / "hotstart" / "render.json").exists()  # an index run has no glyphs
    assert (tmp_path / "hf" / "hotstart" / "best.safetensors").is_file()


def test_a_prompt_longer_than_the_position_table_is_cut_to_its_last_n_positions(
        index_run: Path, news_text_file: Path, capsys: pytest.CaptureFixture) -> None:
    run = load_run(index_run, progress=False)
    window = run.model.config.decoder.n_positions
    text = news_text_file.read_text(encoding="utf-8").replace("\n", "")
    prompt = text[: window + 300]
    ids = torch.as_tensor(run.corpus.vocab.encode(prompt[-window:])).reshape(1, -1)
    with torch.no_grad():
        logits = run.model(ids)[0][0, -1]
    logits[PAD_ID] = -float("inf")
    first = run.corpus.vocab.decode([int(logits.argmax())])  # greedy from the last n_positions characters

    long = "".join(generate(run.model, run.corpus.vocab, prompt, max_new=5, temperature=0))
    assert long[: len(first)] == first
    assert long == "".join(generate(run.model, run.corpus.vocab, prompt[-window:], max_new=5, temperature=0))

    capsys.readouterr()
    assert main(["generate", str(index_run), "--prompt", prompt, "--max-new", "5", "--temperature", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out == prompt + long + "\n" and "Traceback" not in captured.err
