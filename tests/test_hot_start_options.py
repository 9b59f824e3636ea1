"""The settings the hot-start investigation varies: each changes the model or the schedule as it says."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hotstart.cli import _run_config, build_parser
from hotstart.data.prepared import PreparedCorpus, SampleOrder, curriculum_size
from hotstart.errors import HotStartError
from hotstart.experiments.runs import Run
from hotstart.models.decoder import DECODER_SIZES, decoder_parameters, decoder_size
from hotstart.models.encoders import (
    PAPER_INPUT_PARAMS,
    EncoderConfig,
    GlyphEncoder,
    MinimalEncoder,
    encoder_parameters,
)
from hotstart.models.hotstart_lm import HotStartLM, InputConfig, ModelConfig
from hotstart.render.glyph import RenderConfig
from hotstart.training.config import TrainConfig
from hotstart.training.loop import lr_at, make_optimizer


def run_config(*options: str):
    """The RunConfig `hotstart train` builds from these options."""
    return _run_config(build_parser().parse_args(["train", "--data", "D", "--out", "R", *options]))


def vision_model(corpus: PreparedCorpus, size: str = "tiny", **input_kw) -> HotStartLM:
    from hotstart.training.run import build_model

    encoder = input_kw.pop("encoder", EncoderConfig())
    inp = InputConfig(kind="vision", encoder=encoder, render=input_kw.pop("render", RenderConfig(res=8)), **input_kw)
    torch.manual_seed(0)
    return build_model(ModelConfig(len(corpus.vocab), inp, decoder_size(size)), corpus.vocab, progress=False)


def test_onecycle_div_7_5_starts_at_the_papers_2e_4() -> None:
    cfg = run_config("--onecycle-div", "7.5")
    assert cfg.train.onecycle_div == 7.5 and cfg.train.lr_max == 1.5e-3
    assert lr_at(0, cfg.train, 7813) == pytest.approx(2e-4)
    assert lr_at(0, run_config().train, 7813) == pytest.approx(6e-5)  # PyTorch's default div 25


def test_a_prefix_curriculum_re_sees_every_earlier_epoch_and_a_fresh_one_does_not() -> None:
    train_index = np.arange(40_000) * 3  # sequence indices of a large training set
    sizes = [curriculum_size(e) for e in range(3)]
    for order, nested in (("prefix", True), ("fresh", False)):
        stream = SampleOrder(train_index, seed=1, batch_size=100, order=order)
        epochs = [stream._order(e) for e in range(3)]
        assert [len(e) for e in epochs] == sizes
        assert (set(epochs[0]) <= set(epochs[1]) <= set(epochs[2])) == nested, order
    prefix = SampleOrder(train_index, seed=1, batch_size=100, order="prefix")
    first, second = prefix._order(0), prefix._order(1)
    assert not np.array_equal(second[: len(first)], first)  # each epoch is reshuffled
    # random access equals sequential, as for the fresh order
    again = SampleOrder(train_index, seed=1, batch_size=100, order="prefix")
    steps = [90, 3, 51, 50]
    assert all(np.array_equal(again.batch(s)[0], prefix.batch(s)[0]) for s in steps)
    assert run_config("--curriculum", "prefix").train.curriculum_order == "prefix"
    with pytest.raises(HotStartError, match="unknown curriculum 'other'"):
        TrainConfig(curriculum_order="other").validate()


def test_a_tied_index_head_is_its_input_table_and_saves_and_loads(tiny_corpus: PreparedCorpus, tmp_path) -> None:
    from hotstart.training.checkpoint import load_weights, save_weights
    from hotstart.training.run import build_model

    cfg = ModelConfig(len(tiny_corpus.vocab), InputConfig(kind="index"), decoder_size("tiny"), tie_head=True)
    model = build_model(cfg, tiny_corpus.vocab, progress=False)
    assert model.lm_head.weight is model.input.wte.weight
    untied = build_model(ModelConfig(len(tiny_corpus.vocab), InputConfig(kind="index"), decoder_size("tiny")),
                         tiny_corpus.vocab, progress=False)
    assert model.parameter_counts()["total"] == untied.parameter_counts()["total"] - untied.lm_head.weight.numel()
    with torch.no_grad():
        model.input.wte.weight.mul_(3.0)
    save_weights(model, tmp_path / "w.safetensors")  # safetensors refuses shared memory unless we copy
    fresh = build_model(cfg, tiny_corpus.vocab, progress=False)
    load_weights(fresh, tmp_path / "w.safetensors")
    assert torch.equal(fresh.lm_head.weight, model.lm_head.weight) and fresh.lm_head.weight is fresh.input.wte.weight


def test_a_tied_vision_head_keeps_its_own_table_without_weight_decay(tiny_corpus: PreparedCorpus) -> None:
    from hotstart.training.run import build_model

    inp = InputConfig(kind="vision", render=RenderConfig(res=8))
    for tie in (False, True):
        model = build_model(ModelConfig(len(tiny_corpus.vocab), inp, decoder_size("tiny"), tie_head=tie),
                            tiny_corpus.vocab, progress=False)
        groups = make_optimizer(model, TrainConfig())
        decayed = {id(p) for g in groups.param_groups if g["weight_decay"] > 0 for p in g["params"]}
        assert (id(model.lm_head.weight) in decayed) == (not tie)
    assert run_config("--tie-head").model.tie_head


def test_encoder_norm_batch_depends_on_the_batch_in_training_and_not_in_evaluation() -> None:
    torch.manual_seed(0)
    glyphs = torch.rand(6, 8, 8)
    batch = GlyphEncoder(EncoderConfig(name="orig", norm="batch", width=8), 32)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in batch.modules())
    alone, together = batch(glyphs[:2]), batch(glyphs)[:2]
    assert not torch.allclose(alone, together, atol=1e-4)  # training: statistics over the batch's glyphs
    batch.eval()
    assert torch.allclose(batch(glyphs[:2]), batch(glyphs)[:2], atol=1e-5)  # evaluation: running statistics
    group = GlyphEncoder(EncoderConfig(name="orig", width=8), 32)
    assert any(isinstance(m, torch.nn.GroupNorm) for m in group.modules())
    assert torch.allclose(group(glyphs[:2]), group(glyphs)[:2], atol=1e-5)  # per glyph, in training too
    none = GlyphEncoder(EncoderConfig(name="orig", norm="none", width=8), 32)
    assert not any(isinstance(m, (torch.nn.GroupNorm, torch.nn.BatchNorm2d)) for m in none.modules())
    assert all(conv.bias is not None for conv in none.modules() if isinstance(conv, torch.nn.Conv2d))
    with pytest.raises(HotStartError, match="orig\\) only"):
        EncoderConfig(name="simp", norm="batch").validate()
    assert run_config("--encoder-norm", "batch").model.input.encoder.norm == "batch"


@pytest.mark.parametrize("name", ["orig", "opt", "simp"])
def test_paper_sized_encoders_have_the_papers_counts_at_gpt2_small_and_its_share_at_small_cpu(name: str) -> None:
    from hotstart.models.encoders import paper_width

    gpt2_small = decoder_parameters(DECODER_SIZES["gpt2-small"])
    for size in ("gpt2-small", "small-cpu"):
        d = DECODER_SIZES[size]
        decoder = decoder_parameters(d)
        cfg = EncoderConfig(name=name, size="paper")
        count = encoder_parameters(cfg, d.n_embd, 8, paper_width(cfg, d.n_embd, 8, decoder, gpt2_small))
        assert count == pytest.approx(PAPER_INPUT_PARAMS[name] * decoder / gpt2_small, rel=0.05), size
    assert run_config("--encoder-size", "paper").model.input.encoder.size == "paper"


def test_the_model_builds_the_paper_sized_encoder(tiny_corpus: PreparedCorpus) -> None:
    ours = vision_model(tiny_corpus, "small-cpu").parameter_counts()
    paper = vision_model(tiny_corpus, "small-cpu", encoder=EncoderConfig(size="paper")).parameter_counts()
    target = PAPER_INPUT_PARAMS["simp"] * paper["decoder"] / decoder_parameters(DECODER_SIZES["gpt2-small"])
    encoder_and_adapter = paper["input.encoder"] + paper["input.adapter"] - 2 * 256  # less the output LayerNorm
    assert encoder_and_adapter == pytest.approx(target, rel=0.05) and paper["input"] > ours["input"]


def test_an_unpooled_encoder_feeds_the_whole_feature_map_to_the_adapter() -> None:
    # 40x40 with 1x1 patches: two convolutions leave a 20x20 grid, none of it averaged away
    unpooled = MinimalEncoder(width=4, pool=0, res=40, stride=1)
    assert unpooled(torch.zeros(3, 1, 40, 40)).shape == (3, 2 * 4 * 20 * 20) and unpooled.out_features == 3200
    squeezed = MinimalEncoder(width=4, pool=4, res=40)
    assert squeezed(torch.zeros(3, 1, 40, 40)).shape == (3, 2 * 4 * 4 * 4)
    cfg = run_config("--encoder-pool", "0", "--encoder-patch", "1").model.input.encoder
    assert (cfg.pool, cfg.patch) == (0, 1)


def test_pixel_norm_position_standardises_every_pixel_position_over_the_vocabulary(tiny_corpus: PreparedCorpus) -> None:
    model = vision_model(tiny_corpus, pixel_norm="position")
    bank = model.input.glyphs
    standardised = (bank - model.input.pixel_mean) / model.input.pixel_std  # what the encoder sees
    inked = bank.std(dim=0) > 1e-3  # positions some glyph inks
    assert model.input.pixel_mean.shape == (1, 8, 8)
    assert torch.allclose(standardised.mean(dim=0)[inked], torch.zeros(()), atol=1e-4)
    assert torch.allclose(standardised.std(dim=0)[inked], torch.ones(()), atol=1e-3)
    with pytest.raises(HotStartError, match="evaluate it at its own --res"):
        model.input.set_glyphs(torch.zeros(len(tiny_corpus.vocab), 12, 12))
        model.input.embed_glyphs(model.input.glyphs)


def test_input_scale_index_init_gives_the_index_tables_initial_length(tiny_corpus: PreparedCorpus) -> None:
    plain = vision_model(tiny_corpus).input.table()
    scaled = vision_model(tiny_corpus, input_scale="index-init").input.table()
    index_length = 0.02 * math.sqrt(64)  # embed_init_std x sqrt(n_embd) of the tiny decoder
    assert plain.norm(dim=1).mean().item() == pytest.approx(math.sqrt(64), rel=0.05)  # LayerNorm's length
    assert scaled.norm(dim=1).mean().item() == pytest.approx(index_length, rel=1e-4)


def test_centred_inputs_have_a_zero_mean_over_the_vocabulary_in_training_and_evaluation(tiny_corpus: PreparedCorpus) -> None:
    model = vision_model(tiny_corpus, center=True)
    table = model.input.table()
    assert table.mean(dim=0).abs().max().item() < 1e-4 and vision_model(tiny_corpus).input.table().mean(0).abs().max() > 0.1
    ids = tiny_corpus.sequences(tiny_corpus.train_index[:4])
    model.train()
    assert torch.allclose(model.input(ids), table[ids], atol=1e-5)  # the training path centres alike
    assert run_config("--center-inputs", "--input-scale", "index-init").model.input.center


def test_the_explain_grid_varies_one_candidate_per_run_and_the_report_keeps_them_apart() -> None:
    from hotstart.config import to_dict
    from hotstart.experiments.runs import Run, Selector, run_axes
    from hotstart.experiments.sweep import SCALES, grid_runs

    specs = grid_runs("explain", SCALES["cpu"])
    names = [s.name for s in specs]
    assert len(names) == len(set(names)) == 32 and names[:2] == ["hot-index-s0", "hot-simp-8x8-s0"]
    reference = {kind: to_dict(spec.run_config(SCALES["cpu"], "D")) for kind, spec in zip(("index", "vision"), specs)}
    runs = []
    for spec in specs:
        cfg = to_dict(spec.run_config(SCALES["cpu"], "D"))
        assert cfg != reference[spec.kind] or spec in specs[:2], spec.name  # each candidate changes its config
        runs.append(Run(spec.name, run_axes(cfg), [], None, cfg))
    select = Selector(runs)
    # the paper's setting selects only the reference pair; each candidate is found by its own setting
    assert [r.name for r in select("hot", "index") + select("hot", "vision")] == [
        "hot-index-s0", "hot-index-s1", "hot-index-s2", "hot-simp-8x8-s0"]  # index's other seeds: the 40x40 pair's
    assert [r.name for r in select("hot", "vision", curriculum="prefix")] == ["hot-simp-8x8-prefix-s0"]
    assert [r.name for r in select("hot", "index", onecycle_div=7.5, span=2_000_000)] == ["hot-index-div7.5-span2M-s0"]
    assert [r.name for r in select("hot", "vision", res=40, pool=0, patch=1)] == [f"hot-simp-40x40-pool0-patch1-s{seed}"
                                                                                 for seed in (0, 1, 2)]
    # 8. the paper's decoder: the last seven runs, gpt2-small to the paper's 10,248 samples (80 steps of 128),
    # with every hot seed for 40x40 not squeezed and its index pair
    assert names[-7:] == ["hot-index-gpt2-small-s0", "hot-orig-8x8-gpt2-small-s0", "hot-simp-40x40-pool0-patch1-gpt2-small-s0",
                          "hot-index-gpt2-small-s1", "hot-simp-40x40-pool0-patch1-gpt2-small-s1",
                          "hot-index-gpt2-small-s2", "hot-simp-40x40-pool0-patch1-gpt2-small-s2"]
    for spec in specs[-7:]:
        cfg = spec.run_config(SCALES["cpu"], "D")
        assert cfg.model.decoder.n_layer == 12 and cfg.model.decoder.n_embd == 768 and cfg.train.max_samples == 10_240
    assert [r.name for r in select("hot", "index", size="gpt2-small")] == [f"hot-index-gpt2-small-s{seed}" for seed in (0, 1, 2)]
    assert not any(s.size for s in grid_runs("explain", SCALES["smoke"]))  # a smoke sweep stays seconds per run


def _window_run(kind: str, accs: tuple[float, float, float], seed: int = 0, **axes) -> Run:
    """A hot-protocol run with accuracies `accs` at 4,096 / 8,192 / 10,248 samples (settings in `axes`)."""
    base = {"protocol": "hot", "kind": kind, "size": "small-cpu", "schedule": "paper", "seed": seed}
    if kind == "vision":
        base.update(encoder="simp", res=8, crop=1.0, pixel_norm="standardize", output_norm="layernorm")
    else:
        base.update(embed_init_std=0.02)
    rows = [{"samples": s, "val_acc": a, "val_loss": 1.0} for s, a in zip((4096, 8192, 10248), accs, strict=True)]
    return Run(f"{kind}-{seed}-{sorted(axes.items())}", {**base, **axes}, rows, {"stop_reason": "max_samples"}, {})


def test_what_the_hot_start_needs_ranks_the_candidates_and_names_one_that_produced_it(tmp_path) -> None:
    from hotstart.experiments.explain import candidate_rows, explain_section
    from hotstart.experiments.runs import Selector

    runs = [_window_run("index", (0.050, 0.060, 0.07)), _window_run("vision", (0.045, 0.050, 0.06)),
            _window_run("vision", (0.048, 0.058, 0.07), encoder="orig"),  # behind by 0.2 pp
            _window_run("index", (0.050, 0.055, 0.06), curriculum="prefix"),
            _window_run("vision", (0.060, 0.120, 0.14), curriculum="prefix")]  # ahead, ratio 2.2 at 8,192
    rows = candidate_rows(Selector(runs))
    measured = [r for r in rows if r["verdict"] != "not run yet"]
    assert [r["candidate"] for r in measured] == ["5. prefix curriculum", "1. orig encoder (ResNet)",
                                                  "the paper's setting (reference)"]
    assert [r["lead_8192"] for r in measured] == [6.5, -0.2, -1.0]
    assert measured[0]["verdict"] == "hot start at 6,152, 8,200, 10,248" and measured[1]["verdict"] == "no hot start"
    assert measured[0]["index_runs"] == runs[3].name  # the prefix vision run is compared with the prefix index run
    assert measured[0]["seeds"] == "1 seed each"
    assert len(rows) == 18 and rows[-1]["verdict"] == "not run yet"
    text, _ = explain_section(Selector(runs), tmp_path)
    assert ("The hot start appears with: 5. prefix curriculum (3 of 18 rows run so far): 1 of the 2 candidate settings "
            "tried pass the rule") in text and (tmp_path / "explain.png").stat().st_size > 10_000
    text, _ = explain_section(Selector(runs[:3]), tmp_path)
    assert "No candidate produced a hot start (2 of 18 rows run so far). Closest: 1. orig encoder (ResNet) (-0.20 pp" in text


def test_a_candidate_whose_run_is_still_training_is_unfinished_not_unmeasured(tmp_path) -> None:
    from hotstart.experiments.explain import candidate_rows, explain_section
    from hotstart.experiments.runs import Selector

    index = _window_run("index", (0.050, 0.060, 0.07), curriculum="prefix")
    vision = _window_run("vision", (0.045, 0.050, 0.06), curriculum="prefix")
    vision.rows, vision.summary = vision.rows[:1], None  # evaluated at 4,096 samples so far, no summary.json yet
    vision.rows[0]["wall_s"], vision.config = 130.0, {"train": {"max_samples": 10248}}
    row = next(r for r in candidate_rows(Selector([index, vision])) if r["candidate"] == "5. prefix curriculum")
    # 8,200 may still show a lead; the verdict says how far the run got and what it cost so far
    assert row["verdict"] == "no hot start so far (unfinished: vision at 4,096 of 10,248 samples, 2 min)"
    assert row["lead_8192"] is None
    first = vision.rows
    vision.rows = [{"samples": 0, "val_acc": 0.0, "val_loss": 8.0, "wall_s": 60.0}]  # no point of the rule reached yet
    row = next(r for r in candidate_rows(Selector([index, vision])) if r["candidate"] == "5. prefix curriculum")
    assert row["verdict"] == "unfinished: vision at 0 of 10,248 samples, 1 min"
    assert row["seeds"] == "0 seeds of vision, 1 of index"  # a seed counts once it has been evaluated
    vision.rows = first
    vision.summary = {"stop_reason": "early_stopping"}  # finished at 4,096: the rule reads what there is
    row = next(r for r in candidate_rows(Selector([index, vision])) if r["candidate"] == "5. prefix curriculum")
    assert row["verdict"] == "no hot start"
    # a run that met the rule before it stopped: the hot start is named, and so is how far the run got
    vision.rows[0]["val_acc"], vision.summary = 0.080, None
    reference = [_window_run("index", (0.050, 0.060, 0.07)), _window_run("vision", (0.045, 0.050, 0.06)),
                 _window_run("vision", (0.048, 0.058, 0.07), encoder="orig")]
    rows = candidate_rows(Selector([*reference, index, vision]))
    row = next(r for r in rows if r["candidate"] == "5. prefix curriculum")
    assert row["verdict"] == "hot start at 4,096 (unfinished: vision at 4,096 of 10,248 samples, 2 min)"
    text, _ = explain_section(Selector([*reference, index, vision]), tmp_path)
    assert "The hot start appears with: 5. prefix curriculum (2 of 18 rows run so far, 1 more unfinished): 1 of the 2 candidate settings tried pass" in text


def test_the_plateau_is_left_where_every_seed_that_reached_the_point_is_above_it() -> None:
    from hotstart.experiments.report import plateau_exit

    seeds = [_window_run("index", (0.050, 0.060, 0.07)), _window_run("index", (0.058, 0.062, 0.07), seed=1)]
    assert plateau_exit(seeds, reference=0.044) == 8192  # seed 0 is only 0.6 points above it at 4,096
    seeds[1].rows, seeds[1].summary = [{"samples": 0, "val_acc": 0.0, "val_loss": 8.0}], None  # seed 1 just started
    assert plateau_exit(seeds, reference=0.044) == 8192  # read on seed 0 alone, not "never"
    seeds[1].rows = [{"samples": 4096, "val_acc": 0.044, "val_loss": 6.0}]  # seed 1 on the plateau at 4,096
    assert plateau_exit(seeds, reference=0.044) == 8192
    seeds[0].rows[0]["val_acc"] = 0.060
    assert plateau_exit(seeds, reference=0.044) == 8192  # seed 1 holds it back at 4,096
    assert plateau_exit(seeds[:1], reference=0.044) == 4096


def test_runs_at_the_paper_decoder_are_listed_with_how_far_they_got_and_what_they_cost(tmp_path) -> None:
    from hotstart.experiments.explain import explain_section
    from hotstart.experiments.runs import Selector

    runs = [_window_run("index", (0.050, 0.060, 0.07)), _window_run("vision", (0.045, 0.050, 0.06)),
            _window_run("vision", (0.048, 0.058, 0.07), encoder="orig"),
            _window_run("index", (0.055, 0.094, 0.12), size="gpt2-small"),
            _window_run("vision", (0.065, 0.098, 0.12), encoder="orig", size="gpt2-small")]
    for run, wall in zip(runs[3:], (7200.0, 3600.0), strict=True):
        for row in run.rows:
            row["wall_s"] = wall * row["samples"] / 10248
        run.config = {"train": {"max_samples": 10248}}
    runs[4].rows, runs[4].summary = runs[4].rows[:2], None  # stopped after 8,192 samples
    text, _ = explain_section(Selector(runs), tmp_path)
    assert "Runs at the paper's decoder (gpt2-small)" in text
    assert f"| {runs[3].name} | index | 10,248 of 10,248 | 5.50 | 9.40 | 12.00 | 2.00 h | 1.42 |" in text
    assert f"| {runs[4].name} | orig 8x8 | 8,192 of 10,248 (unfinished) | 6.50 | 9.80 | - | 0.80 h | 2.85 |" in text
    assert f"| {runs[4].name} minus {runs[3].name} (pp) | | | +1.00 | +0.40 | - | | |" in text
    # a second seed: each vision seed is read against index of its own seed, and an unfinished seed
    # leaves the other seeds' points in the plot's and the table's means
    seed1 = [_window_run("index", (0.045, 0.070, 0.10), seed=1, size="gpt2-small"),
             _window_run("vision", (0.080, 0.100, 0.11), seed=1, encoder="orig", size="gpt2-small")]
    for run in seed1:
        run.config = {"train": {"max_samples": 10248}}
        for row in run.rows:
            row["wall_s"] = 1000.0
    seed1[0].rows, seed1[0].summary = seed1[0].rows[:1], None  # index seed 1 stopped at 4,096
    more_reference = [_window_run("index", (0.05, 0.06, 0.07), seed=s) for s in (1, 2)]  # keep small-cpu the sweep's size
    text, rows = explain_section(Selector(runs + seed1 + more_reference), tmp_path)
    assert next(r for r in rows if r["candidate"].startswith("8. orig"))["seeds"] == "2 seeds each"
    assert next(r for r in rows if r["candidate"].startswith("1. orig"))["seeds"] == "1 seed of vision, 3 of index"
    assert "| 1. orig encoder (ResNet) | " in text and " | 1 / 3 | " in text
    assert f"| {seed1[1].name} minus {seed1[0].name} (pp) | | | +3.50 | - | - | | |" in text
    assert f"| {runs[4].name} minus {runs[3].name} (pp) | | | +1.00 | +0.40 | - | | |" in text
    from hotstart.experiments.explain import _mean_lead
    assert _mean_lead([runs[3], seed1[0]], [runs[4], seed1[1]], 8192) == pytest.approx(100 * (0.099 - 0.094))
    # at the paper's scale every run has that decoder, and the main table holds them
    paper_scale = [_window_run("index", (0.05, 0.06, 0.07), size="gpt2-small"),
                   _window_run("vision", (0.04, 0.05, 0.06), size="gpt2-small"),
                   _window_run("vision", (0.04, 0.05, 0.06), encoder="orig", size="gpt2-small")]
    text, _ = explain_section(Selector(paper_scale), tmp_path)
    assert "No candidate produced a hot start" in text and "Runs at the paper's decoder" not in text


def test_a_run_folder_with_no_evaluation_yet_is_left_out_of_the_report(tmp_path) -> None:
    import shutil

    from hotstart.experiments.runs import load_runs

    committed = Path(__file__).parent.parent / "docs/results/cpu/runs/hot-orig-8x8-gpt2-small-s0"
    for name in ("evaluated", "just-started"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        shutil.copy(committed / "config.yaml", tmp_path / "runs" / name)
    shutil.copy(committed / "metrics.jsonl", tmp_path / "runs/evaluated")
    (tmp_path / "runs/just-started/metrics.jsonl").write_text("")  # training, before its step-0 evaluation
    runs, _, _ = load_runs([tmp_path])
    assert [r.name for r in runs] == ["evaluated"] and runs[0].rows[-1]["samples"] == 10240


def test_a_plot_of_many_candidates_gives_each_its_own_look_and_keeps_the_legend_off_the_lines(tmp_path, monkeypatch) -> None:
    from hotstart import plot

    drawn = []
    monkeypatch.setattr(plot, "_save", lambda fig, out: drawn.append(fig) or out)  # keep the figure to read it
    series = {f"candidate {i}": [0.0, float(i)] for i in range(18)}
    plot.plot_series([0, 1], series, tmp_path / "x.png", "samples", "lead", hlines={"no lead": 0.0})
    ax = drawn[0].axes[0]
    looks = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines() if line.get_label() in series]
    assert len(looks) == 18 and len(set(looks)) == 18
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # beside the axes, not over the lines
