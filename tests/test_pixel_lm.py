"""The shared decoder (GPT-2 or Llama-style blocks from `transformers`) and PixelGPT's next-patch model
and objective (`hotstart train --objective next-patch`): what the loss covers, causality, the heads,
grouping of PIXAR's L patches per position, the run folder and exact resume."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.models.decoder import build_decoder, decoder_parameters, decoder_size
from hotstart.models.hotstart_lm import HotStartLM, InputConfig, ModelConfig
from hotstart.models.pixel_lm import PixelLM, PixelLMConfig
from hotstart.render.line import LineRenderConfig, LineRenderer
from hotstart.use.export import to_transformers

TIMING = ("samples_per_s", "wall_s")
TEXTS = ["今天天气很好,我们去公园散步吧。", "新华社北京电", "一二三四五六七八九十"]


def lines(cfg: PixelLMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    batch = LineRenderer(cfg.line).render_batch(TEXTS)
    return torch.from_numpy(batch.patches), torch.from_numpy(batch.lengths)


def tiny(**kw: object) -> PixelLMConfig:
    return PixelLMConfig(**{"size": "tiny", "line": LineRenderConfig(max_patches=24), **kw})


def test_the_llama_decoder_has_rmsnorm_swiglu_and_grouped_query_attention() -> None:
    d = decoder_size("small-cpu", "llama")
    decoder = build_decoder(d)
    assert type(decoder).__name__ == "LlamaModel" and isinstance(decoder.norm, LlamaRMSNorm)
    layer = decoder.layers[0]
    assert isinstance(layer.mlp, LlamaMLP) and layer.mlp.gate_proj.out_features == d.intermediate == 704
    head_dim = d.n_embd // d.n_head
    assert layer.self_attn.q_proj.out_features == d.n_embd and layer.self_attn.k_proj.out_features == 2 * head_dim
    assert not decoder.get_input_embeddings().weight.requires_grad  # the models bring their own inputs
    # SwiGLU at 8/3 n_embd holds about as many weights as GPT-2's 4 n_embd MLP; GQA and no position table make it smaller
    assert 0.8 < decoder_parameters(d) / decoder_parameters(decoder_size("small-cpu")) < 0.9


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_hotstart_lm_on_either_decoder_exports_to_the_same_logits(kind: str) -> None:
    torch.manual_seed(0)
    model = HotStartLM(ModelConfig(40, InputConfig(kind="index"), decoder_size("tiny", kind))).eval()
    ids = torch.randint(0, 40, (2, 12))
    hf = to_transformers(model)
    assert type(hf).__name__ == ("LlamaForCausalLM" if kind == "llama" else "GPT2LMHeadModel")
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, model(ids)[0], atol=1e-5)


def test_the_loss_covers_each_line_up_to_its_end_patch_and_nothing_after() -> None:
    torch.manual_seed(0)
    model = PixelLM(tiny()).eval()
    patches, lengths = lines(model.config)
    short = int(lengths.argmin())
    assert lengths[short] < patches.shape[1]
    with torch.no_grad():
        base = model.line_losses(patches, lengths)
        after = patches.clone()
        after[short, lengths[short]:] = 1.0  # ink after the end patch: never predicted, never seen by what is
        assert torch.allclose(model.line_losses(after, lengths), base)
        inside = patches.clone()
        inside[short, lengths[short] - 1] = 0.5  # the end patch itself is a target
        assert not torch.allclose(model.line_losses(inside, lengths)[short], base[short])


def test_a_position_is_predicted_only_from_the_patches_before_it() -> None:
    torch.manual_seed(0)
    model = PixelLM(tiny()).eval()
    patches, _ = lines(model.config)
    positions = model.group(patches)
    changed = positions.clone()
    changed[:, 5] = torch.rand_like(changed[:, 5])
    with torch.no_grad():
        before, after = model.predict(positions), model.predict(changed)
    assert torch.equal(before[:, :6], after[:, :6])  # position 5's own prediction does not see position 5
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_the_mse_loss_is_the_mean_pixel_error_over_line_positions() -> None:
    torch.manual_seed(0)
    model = PixelLM(tiny()).eval()
    patches, lengths = lines(model.config)
    with torch.no_grad():
        out = model.predict(model.group(patches))
        target = patches.reshape(*patches.shape[:2], -1)
        per_position = ((out - target) ** 2).mean(-1)
        used = torch.arange(patches.shape[1])[None, :] < lengths[:, None]
        assert torch.allclose(model(patches, lengths), per_position[used].mean(), atol=1e-6)


def test_norm_target_regresses_each_patchs_standardised_pixels() -> None:
    torch.manual_seed(0)
    model = PixelLM(tiny(norm_target=True)).eval()
    patches, lengths = lines(model.config)
    flat = patches.reshape(*patches.shape[:2], -1)
    target = (flat - flat.mean(-1, keepdim=True)) / (flat.var(-1, keepdim=True) + 1e-6).sqrt()
    with torch.no_grad():
        out = model.predict(model.group(patches))
        used = torch.arange(patches.shape[1])[None, :] < lengths[:, None]
        assert torch.allclose(model(patches, lengths), ((out - target) ** 2).mean(-1)[used].mean(), atol=1e-5)
        pixels = model.pixels(out)
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_pixar_groups_l_patches_per_position_with_a_bernoulli_head() -> None:
    cfg = tiny(line=LineRenderConfig(patch=8, mode="binary", max_patches=26), head="bernoulli", patch_len=2)
    torch.manual_seed(0)
    model = PixelLM(cfg).eval()
    patches, lengths = lines(cfg)
    positions = model.group(patches)
    assert positions.shape == (3, 13, 2 * 64) and cfg.positions == 13
    assert torch.equal(model.ungroup(positions), patches)
    odd = model.group(patches[:, :25])  # a batch cut to an odd number of patches: the last group padded blank
    assert odd.shape == (3, 13, 128) and not odd[:, -1, 64:].any()
    with torch.no_grad():
        out = model.predict(positions)
        bce = F.binary_cross_entropy_with_logits(out, positions, reduction="none").mean(-1)
        used = torch.arange(13)[None, :] * 2 < lengths[:, None]
        assert torch.allclose(model(patches, lengths), bce[used].mean(), atol=1e-6)
        grown = model.generate(patches[:, :4], new_positions=3)
    assert grown.shape[1] == 10 and set(grown[:, 4:].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(grown[:, :4], patches[:, :4])


def test_training_memorises_lines_and_greedy_generation_continues_them() -> None:
    torch.manual_seed(0)
    model = PixelLM(tiny())
    patches, lengths = lines(model.config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model(patches, lengths).item()
    for _ in range(150):
        loss = model(patches, lengths)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < first / 20
    model.eval()
    grown = model.generate(patches[:1, :4], new_positions=4)
    truth = patches[0, 4:8]
    assert (grown[0, 4:8] - truth).abs().mean() < 0.1 * truth.mean()


def greedy_without_cache(model: PixelLM, prompt: torch.Tensor, new_positions: int) -> torch.Tensor:
    """The reference a KV cache must match: the whole line through the decoder for every new position,
    a prompt's cells past its last whole position standing in the first new one."""
    whole = prompt.shape[1] // model.config.patch_len * model.config.patch_len
    positions, known = model.group(prompt[:, :whole]), prompt[:, whole:].flatten(1)
    for step in range(new_positions):
        out = model._binarised(model.pixels(model.predict(torch.cat([positions, positions[:, -1:]], dim=1))[:, -1:]))
        if step == 0:
            out[..., : known.shape[1]] = known[:, None]
        positions = torch.cat([positions, out], dim=1)
    return model.ungroup(positions)


@pytest.mark.parametrize("decoder, mode, patch_len", [("llama", "grey", 1), ("gpt2", "grey", 1), ("llama", "binary", 2)])
def test_generation_with_a_kv_cache_equals_the_whole_line_recomputed(decoder: str, mode: str, patch_len: int) -> None:
    cfg = tiny(decoder=decoder, line=LineRenderConfig(patch=8, mode=mode, max_patches=24), patch_len=patch_len,
               head="bernoulli" if mode == "binary" else "mse")
    torch.manual_seed(0)
    model = PixelLM(cfg).eval()
    patches, _ = lines(cfg)
    with torch.no_grad():
        cached = model.generate(patches[:, :5], new_positions=4)
        assert torch.allclose(cached, greedy_without_cache(model, patches[:, :5], 4), atol=1e-5)
        assert torch.equal(cached[:, :5], patches[:, :5])  # an odd prompt with L = 2 is kept whole, not padded
        assert cached.shape[1] == (5 // patch_len + 4) * patch_len
        empty = model.generate(patches[:, :0], new_positions=3)  # from the start vector alone
        assert empty.shape[1] == 3 * patch_len
        assert model.generate(patches[:, :20], new_positions=9).shape[1] == cfg.positions * patch_len  # the context ends it


@pytest.mark.parametrize("settings, words", [
    ({"head": "softmax"}, "unknown pixel head 'softmax'"),
    ({"decoder": "mamba"}, "unknown decoder 'mamba'"),
    ({"head": "bernoulli", "norm_target": True}, "--norm-target standardises regression targets"),
    ({"patch_len": 0}, "--patch-len must be from 1 to 8"),
    ({"patch_len": 5}, "--patch-len 5 does not divide the line's 24 patches"),
    ({"size": "huge"}, "unknown decoder size 'huge'"),
])
def test_a_bad_pixel_lm_setting_is_refused_by_name(settings: dict, words: str) -> None:
    with pytest.raises(HotStartError, match=words):
        tiny(**settings).validate()


def next_patch_args(corpus: PreparedCorpus, out: Path, *extra: str) -> list[str]:
    """A tiny pixel LM over lines of up to 40 patches (the corpus's 32-character sequences fit)."""
    return ["train", "--objective", "next-patch", "--data", str(corpus.path), "--size", "tiny", "--max-patches", "40",
            "--batch-size", "8", "--max-samples", "48", "--eval-every", "16", "--dense-until", "48",
            "--eval-sequences", "8", "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet", *extra]


def rows_without_timing(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_a_next_patch_run_writes_its_folder_and_a_generation_at_every_evaluation(tiny_corpus: PreparedCorpus,
                                                                                 tmp_path: Path) -> None:
    run = tmp_path / "pixelgpt"
    assert main(next_patch_args(tiny_corpus, run)) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["objective"] == "next-patch" and config["model"]["decoder"] == "llama"
    rows = rows_without_timing(run)
    assert [r["samples"] for r in rows] == [0, 16, 32, 48]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert sorted(p.name for p in (run / "generations").iterdir()) == [f"{r['samples']:09d}.png" for r in rows]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["objective"] == "next-patch" and summary["head"] == "mse" and summary["val_lines"] == 8
    counts = summary["parameters"]
    assert counts["total"] == counts["patch_embed"] + counts["decoder"] + counts["head"]
    assert summary["val_lines_truncated"] == 0


def test_a_killed_next_patch_run_resumes_to_the_uninterrupted_metrics(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--head", "bernoulli", "--line-mode", "binary", "--patch", "8", "--patch-len", "2")
    assert main(next_patch_args(tiny_corpus, tmp_path / "reference", *args)) == 0
    loop = importlib.import_module("hotstart.training.loop")
    real, calls = loop.save_training_state, []

    def killed_after_the_second_state(path, *a, **kw):
        real(path, *a, **kw)
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_training_state", killed_after_the_second_state)
    assert main(next_patch_args(tiny_corpus, tmp_path / "killed", *args)) == 130
    monkeypatch.setattr(loop, "save_training_state", real)
    assert main([*next_patch_args(tiny_corpus, tmp_path / "killed", *args), "--resume"]) == 0
    assert rows_without_timing(tmp_path / "killed") == rows_without_timing(tmp_path / "reference")


def test_a_next_char_run_trains_on_the_llama_decoder(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    run = tmp_path / "llama-index"
    assert main(["train", "--data", str(tiny_corpus.path), "--size", "tiny", "--decoder", "llama", "--batch-size", "16",
                 "--max-samples", "32", "--eval-every", "16", "--precision", "fp32", "--device", "cpu",
                 "--out", str(run), "--quiet"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["decoder"]["kind"] == "llama" and config["model"]["decoder"]["n_layer"] == 2
    from hotstart.training.run import load_run

    loaded = load_run(run)
    assert type(loaded.model.decoder).__name__ == "LlamaModel"


@pytest.mark.parametrize("extra, words", [
    (["--mask-ratio", "0.5"], "--mask-ratio is not an option of --objective next-patch"),
    (["--head", "softmax"], "unknown pixel head 'softmax'"),
])
def test_bad_next_patch_options_are_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture, extra: list, words: str) -> None:
    assert main(next_patch_args(tiny_corpus, tmp_path / "bad", *extra)) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "bad").exists()


def test_glyphs_read_back_as_their_characters_and_blank_or_end_cells_as_such() -> None:
    from hotstart.analysis.readback import BLANK, END, GlyphReader, language_agreement
    from hotstart.data.prepared import Vocab

    chars = list(dict.fromkeys("".join(TEXTS).replace(",", "")))
    vocab = Vocab(["<pad>", "<unk>", "<sep>", *chars], [0, 0, 0, *range(len(chars), 0, -1)])
    for line in (LineRenderConfig(cell="char", max_patches=40), LineRenderConfig(patch=8, mode="binary", cell="char", max_patches=40)):
        reader = GlyphReader(line, vocab)
        drawn = LineRenderer(line).render_batch(["新华社 北京电"])
        cells = torch.from_numpy(drawn.patches[0, : drawn.lengths[0]])
        ids = reader.read(cells)
        assert ids[3] == BLANK and ids[-1] == END
        assert reader.text(ids.tolist()) == "新华社 北京电"  # even binary 8x8, where some characters share a drawing
        assert reader.readable(cells, ids).tolist() == [True] * 3 + [False] + [True] * 3 + [False]
        assert not reader.readable(torch.rand_like(cells) * 0.2, reader.read(torch.rand_like(cells) * 0.2)).any()
    assert reader.drawn_as(torch.tensor([0, 1, 2])).tolist() == [BLANK] * 3
    with pytest.raises(HotStartError, match="one character per patch"):
        GlyphReader(LineRenderConfig(), vocab)
    assert language_agreement("新华社", "北京 ab") == 0.5


def test_running_text_reads_back_by_ocr_and_only_what_reads_as_the_vocabulary_counts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hotstart.analysis.readback import GlyphReader, OcrReader, line_reader
    from hotstart.data.prepared import Vocab

    chars = list(dict.fromkeys("".join(TEXTS)))
    vocab = Vocab(["<pad>", "<unk>", "<sep>", *chars], [0, 0, 0, *range(len(chars), 0, -1)])
    line = LineRenderConfig(max_patches=40)  # running text, 16 px grey
    reader = line_reader(line, vocab)
    assert isinstance(reader, OcrReader) and isinstance(line_reader(LineRenderConfig(cell="char"), vocab), GlyphReader)
    renderer = LineRenderer(line)
    prompt, rest = "新华社北京电", "我们去公园散步吧一二三四五六"
    prompt_len = renderer.render_batch([prompt]).lengths[0] - 1
    drawn = renderer.render_batch([prompt + rest])
    cells = torch.from_numpy(drawn.patches[0, : drawn.lengths[0]])
    read = reader.read_line(cells[prompt_len:], prompt, prompt_len)
    assert read["read"].endswith(rest[1:]) and read["readability"] >= 0.9 and read["language_agreement"] >= 0.9
    # the end patch closes the line: nothing after it is read
    ended = reader.read_line(torch.cat([cells[prompt_len:prompt_len + 4], torch.ones(1, 16, 16), cells[prompt_len + 4:]]),
                             prompt, prompt_len)
    assert len(ended["read"]) <= 5
    assert reader.read_line(torch.ones(4, 16, 16), prompt, prompt_len)["readability"] == 0  # the end at once
    assert reader.read_line(torch.zeros(8, 16, 16), prompt, prompt_len)["readability"] == 0  # blank
    smudges = torch.rand(12, 16, 16, generator=torch.Generator().manual_seed(0))
    assert reader.read_line(smudges, prompt, prompt_len)["readability"] <= 0.2
    # the recogniser decodes a row of blurred average glyphs as characters too (a PixelGPT run's did, 健建爆),
    # with low probabilities: only characters it is sure of count (the engine isolated: a fixed reading)
    for probability, counted in ((0.25, 0), (0.9, 2)):
        reading = [("我们", 0.0, [0, [], [], [], [probability, probability]])]
        monkeypatch.setattr(reader.engine, "text_rec", lambda image, return_word_box, r=reading: (r, 0.0))
        assert reader.read_line(cells[:2], prompt, prompt_len)["readability"] == counted / 2
    # PIXAR's binary 8 px lines are too small for the recogniser, even drawn from real text
    small = LineRenderConfig(patch=8, mode="binary", max_patches=40)
    small_len = LineRenderer(small).render_batch([prompt]).lengths[0] - 1
    drawn = LineRenderer(small).render_batch([prompt + rest])
    small_cells = torch.from_numpy(drawn.patches[0, : drawn.lengths[0]])
    assert OcrReader(small, vocab).read_line(small_cells[small_len:], prompt, small_len)["readability"] < 0.5
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # the OCR extra not installed
    with pytest.raises(HotStartError, match=r"pip install 'hotstart\[ocr\]'"):
        OcrReader(line, vocab)


def test_a_char_cell_run_is_scored_by_reading_predictions_back_and_generates_an_image(
        tiny_corpus: PreparedCorpus, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "pixelgpt-char"
    assert main(next_patch_args(tiny_corpus, run, "--cell", "char", "--patch", "8")) == 0
    rows = rows_without_timing(run)
    assert all(0 <= r["val_acc"] <= 1 for r in rows)
    # floors beside every evaluation, the same at each (the validation lines never change); ranks nest
    for key in ("floor_loss", "floor_blank_acc", "floor_most_frequent_acc"):
        assert len({r[key] for r in rows}) == 1 and rows[0][key] > 0, key
    assert all(0 <= r["val_rank1_acc"] <= r["val_rank10_acc"] <= 1 for r in rows)
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "新华社", "--max-new", "5", "--out", str(tmp_path / "gen.png")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prompt_patches"] == 3 and result["generated_patches"] == 5 and 0 <= result["readability"] <= 1
    from PIL import Image

    assert Image.open(tmp_path / "gen.png").width >= 2 * 8 * 8
    assert main(["generate", str(run), "--max-new", "3", "--out", str(tmp_path / "empty.png")]) == 0  # no prompt
    assert json.loads(capsys.readouterr().out)["generated_patches"] == 3
    # a free-cell run's lines are not character cells: no val_acc, and its generations are read by OCR
    assert "val_acc" not in rows_without_timing_of(tiny_corpus, tmp_path / "free")[-1]
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "free"), "--prompt", "新华社", "--max-new", "6",
                 "--out", str(tmp_path / "free.png")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["readability"] <= 1 and "ocr_confidence" in result and isinstance(result["read"], str)


def rows_without_timing_of(corpus: PreparedCorpus, run: Path) -> list[dict]:
    assert main([*next_patch_args(corpus, run), "--max-samples", "8"]) == 0
    return rows_without_timing(run)


@pytest.mark.parametrize("setup, extra, words", [
    ("pixel", ["--prompt", "新华社\U00013000", "--out", "x.png"], "no font of the run's chain draws"),
    ("pixel", [], "writes an image; pass --out"),
    ("pixel", ["--prompt", "新" * 60, "--out", "x.png"], "fills the run's line of 40 patches"),
    ("mlm", ["--out", "x.png"], "is a run of --objective mlm"),
])
def test_bad_generation_requests_are_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture, setup: str, extra: list,
                                                         words: str) -> None:
    run = tmp_path / setup
    if setup == "pixel":
        assert main([*next_patch_args(tiny_corpus, run), "--max-samples", "8"]) == 0
    else:
        assert main(["train", "--objective", "mlm", "--data", str(tiny_corpus.path), "--size", "tiny", "--max-samples", "8",
                     "--batch-size", "8", "--eval-sequences", "8", "--device", "cpu", "--precision", "fp32",
                     "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["generate", str(run), *[str(tmp_path / a) if a == "x.png" else a for a in extra]]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- triage: does it learn at all?


MEMORISED = "我们在北京学习中文和数学今天天气很好人工智能正在改变世界的每一个角落他说明天会下雨"
MEMORISED_LINES = [MEMORISED[9 * i : 9 * i + 14] for i in range(3)]  # three lines of 14 characters, one per cell


def memorise(model: PixelLM, steps: int = 300) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Train `model` on three char-cell lines until it knows them: (patches, lengths, its last loss, the
    mean-glyph predictor's loss on the same targets: each pixel's mean over the batch's patches)."""
    batch = LineRenderer(model.config.line).render_batch(MEMORISED_LINES)
    patches, lengths = torch.from_numpy(batch.patches), torch.from_numpy(batch.lengths)
    grouped = model.group(patches)
    targets = grouped[torch.arange(grouped.shape[1])[None, :] * model.config.patch_len < lengths[:, None]]
    mean = targets.mean(0).expand_as(targets)  # (positions, L*P*P): the mean glyph, every position alike
    floor = (((targets - mean) ** 2).mean() if model.config.head == "mse"
             else F.binary_cross_entropy(mean.clamp(1e-4, 1 - 1e-4), targets)).item()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(patches, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return patches, lengths, loss.item(), floor


def read_back_share(model: PixelLM, patches: torch.Tensor, prompt_cells: int = 4) -> float:
    """Each memorised line's first `prompt_cells` cells as a prompt, the rest generated greedily and read back by
    the glyph reader: the share of generated cells that read as the line's own character."""
    from hotstart.analysis.readback import GlyphReader
    from hotstart.data.prepared import Vocab

    chars = sorted(set(MEMORISED))
    vocab = Vocab(["<pad>", "<unk>", "<sep>", *chars], [0, 0, 0, *[1] * len(chars)])
    reader = GlyphReader(model.config.line, vocab)
    model.eval()
    right = total = 0
    for line, text in zip(patches, MEMORISED_LINES):
        new = (len(text) - prompt_cells) // model.config.patch_len
        grown = model.generate(line[None, :prompt_cells], new_positions=new)[0, prompt_cells : prompt_cells + new * model.config.patch_len]
        read = reader.text(reader.read(grown).tolist())
        right += sum(a == b for a, b in zip(read, text[prompt_cells:]))
        total += len(grown)
    return right / total


@pytest.mark.slow
@pytest.mark.parametrize(("head", "mode", "patch", "patch_len"), [("mse", "grey", 16, 1), ("bernoulli", "binary", 8, 2)])
def test_a_tiny_pixel_lm_memorises_one_batch_of_lines_and_writes_them_back_readably(head: str, mode: str, patch: int,
                                                                                     patch_len: int) -> None:
    # PixelGPT's head (mse, 16 px grey) and PIXAR's stage 1 (bernoulli, 8 px binary, two patches per position):
    # the loss falls under 10% of the mean-glyph predictor's, and the lines generated back from four cells read
    # back as themselves (a broken shift, mask or loss fails one or the other)
    torch.manual_seed(0)
    line = LineRenderConfig(patch=patch, mode=mode, cell="char", max_patches=16, binary_draw="aliased")
    model = PixelLM(PixelLMConfig(size="tiny", line=line, head=head, patch_len=patch_len))
    patches, _, loss, floor = memorise(model)
    assert loss < 0.1 * floor, (loss, floor)
    assert read_back_share(model, patches) >= 0.9


@pytest.mark.slow
def test_pixar_stage_2_on_a_memorised_stage_1_keeps_its_lines_readable() -> None:
    # stage 2 must sharpen what stage 1 knows, not destroy it: from a stage 1 that writes its lines back, 100
    # adversarial steps (the discriminator judging what generation emits) leave them readable
    from hotstart.models.pixar import AdversarialConfig, AdversarialPixelLM

    torch.manual_seed(0)
    cfg = PixelLMConfig(size="tiny", head="bernoulli", patch_len=2,
                        line=LineRenderConfig(patch=8, mode="binary", cell="char", max_patches=16, binary_draw="aliased"))
    stage1 = PixelLM(cfg)
    patches, lengths, _, _ = memorise(stage1)
    assert read_back_share(stage1, patches) >= 0.9
    stage2 = AdversarialPixelLM(cfg, AdversarialConfig(disc_sees="emitted", disc_dropout=0.0))
    missing, unexpected = stage2.load_state_dict(stage1.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("discriminator.") for k in missing)
    optimizer = torch.optim.AdamW(stage2.parameters(), lr=3e-4, weight_decay=0.0)
    stage2.train()
    weights = []
    for _ in range(100):
        loss = stage2(patches, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        weights.append(stage2.last_parts["adv_weight"])
    assert max(weights) > 0  # the adversarial term reached the generator
    assert read_back_share(stage2, patches) >= 0.9


@pytest.mark.slow
def test_a_tiny_dual_lm_memorises_text_pixels_and_pairs() -> None:
    # DualGPT's three kinds on one decoder, each memorised: the next character of the text (and of the text
    # after its own line) read right, and the pixels under 10% of the mean-glyph predictor's loss
    from hotstart.models.dual_lm import DualLM, DualLMConfig

    torch.manual_seed(0)
    chars = sorted(set(MEMORISED))
    ids = torch.tensor([[3 + chars.index(c) for c in text] for text in MEMORISED_LINES])
    pixel = PixelLMConfig(size="tiny", line=LineRenderConfig(patch=16, cell="char", max_patches=16))
    model = DualLM(DualLMConfig(pixel=pixel, vocab_size=3 + len(chars), seq_len=ids.shape[1]))
    batch = LineRenderer(pixel.line).render_batch(MEMORISED_LINES)
    patches, lengths = torch.from_numpy(batch.patches), torch.from_numpy(batch.lengths)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for _ in range(300):
        loss = model(ids, patches, lengths, patches, ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        text_right = (model.text_logits(ids).argmax(-1) == ids[:, 1:]).float().mean().item()
        pair_right = (model.pair_logits(patches, ids).argmax(-1) == ids).float().mean().item()  # read from its line
        grouped = model.pixel.group(patches)
        targets = grouped[torch.arange(grouped.shape[1])[None, :] < lengths[:, None]]
        floor = ((targets - targets.mean(0)) ** 2).mean().item()
        pixel_loss = model.pixel(patches, lengths).item()
    assert text_right == 1.0 and pair_right >= 0.95, (text_right, pair_right)
    assert pixel_loss < 0.1 * floor, (pixel_loss, floor)


@pytest.mark.parametrize(("head", "mode", "patch_len"), [("mse", "grey", 1), ("bernoulli", "binary", 2)])
def test_ranking_puts_the_true_glyph_first_for_a_perfect_prediction_and_measures_the_floors(head: str, mode: str,
                                                                                          patch_len: int) -> None:
    from hotstart.analysis.readback import GlyphReader
    from hotstart.data.prepared import Vocab
    from hotstart.training.next_patch_run import ranking_accuracy

    text = "我们在北京学习中文我们在"  # 12 characters; 我 most frequent, no blank
    chars = list(dict.fromkeys(text))
    vocab = Vocab(["<pad>", "<unk>", "<sep>", *chars], [0, 0, 0, *range(len(chars), 0, -1)])
    cfg = PixelLMConfig(size="tiny", head=head, patch_len=patch_len,
                        line=LineRenderConfig(patch=8, mode=mode, cell="char", max_patches=14))
    model, reader = PixelLM(cfg), GlyphReader(cfg.line, vocab)
    drawn = LineRenderer(cfg.line).render_batch([text])
    patches, lengths = torch.from_numpy(drawn.patches), torch.from_numpy(drawn.lengths)
    tokens = torch.tensor([[3 + chars.index(c) for c in text]])
    truth = model.group(patches)  # the output that predicts every cell exactly: pixels, or sure logits of them
    out = truth if head == "mse" else (truth * 2 - 1) * 20
    top1, top10, blank, common, counted = ranking_accuracy(model, reader, out, tokens, lengths, most_frequent=3)
    assert counted == len(text) - 1 and top1 == top10 == counted
    assert blank == 0 and common == text[1:].count("我")
    # the output of another line: the true glyph is rarely first, and a top-10 of 9 glyphs holds everything
    shifted = torch.roll(out, 1, dims=1)
    top1, top10, *_ = ranking_accuracy(model, reader, shifted, tokens, lengths, most_frequent=3)
    assert top1 < counted / 2 and top10 == counted
