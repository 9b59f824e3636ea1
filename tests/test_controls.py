"""The hot start's controls: each changes exactly what it says, and the controls grid keeps them apart."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import pytest
import torch

from hotstart.cli import _run_config, build_parser
from hotstart.data.prepared import SPECIALS, PreparedCorpus
from hotstart.models.decoder import decoder_size
from hotstart.models.encoders import EncoderConfig, GlyphEncoder
from hotstart.models.hotstart_lm import InputConfig, ModelConfig
from hotstart.render.glyph import RenderConfig
from hotstart.training.run import build_model


def run_config(*options: str):
    """The RunConfig `hotstart train` builds from these options."""
    return _run_config(build_parser().parse_args(["train", "--data", "D", "--out", "R", *options]))


def bank(corpus: PreparedCorpus, **input_kw) -> torch.Tensor:
    """The (V, R, R) glyph bank a tiny vision model of these input settings reads."""
    inp = InputConfig(kind="vision", render=RenderConfig(res=8), **input_kw)
    return build_model(ModelConfig(len(corpus.vocab), inp, decoder_size("tiny")), corpus.vocab, progress=False).input.glyphs


def test_glyph_permute_gives_each_character_another_characters_glyph_and_specials_their_own(tiny_corpus) -> None:
    own, permuted = bank(tiny_corpus), bank(tiny_corpus, glyph_permute=1)
    n = len(SPECIALS)
    assert torch.equal(permuted[:n], own[:n])
    # the same pictures (a permutation of the rows), and almost no character keeps its own
    rows = lambda b: Counter(tuple(row.flatten().tolist()) for row in b[n:])
    assert rows(permuted) == rows(own)
    kept = (permuted[n:] == own[n:]).flatten(1).all(dim=1).float().mean().item()
    assert kept < 0.05
    assert torch.equal(bank(tiny_corpus, glyph_permute=1), permuted)  # fixed: rebuilt alike from the config
    assert not torch.equal(bank(tiny_corpus, glyph_permute=2), permuted)


def test_glyph_source_noise_keeps_each_glyphs_ink_and_loses_its_strokes(tiny_corpus) -> None:
    own, noise = bank(tiny_corpus), bank(tiny_corpus, glyph_source="noise")
    inked = own.flatten(1).sum(1) > 0
    assert inked.sum() > 10
    # the same pixels in another order: the same ink share and grey levels per character
    assert torch.equal(own.flatten(1).sort(dim=1).values, noise.flatten(1).sort(dim=1).values)
    assert (own.flatten(1) != noise.flatten(1))[inked].any(dim=1).all()
    # no strokes: a glyph's horizontally neighbouring pixels go together, noise's do not
    def neighbour_correlation(b: torch.Tensor) -> float:
        left, right = b[inked][:, :, :-1].flatten(), b[inked][:, :, 1:].flatten()
        return torch.corrcoef(torch.stack([left, right]))[0, 1].item()
    assert neighbour_correlation(own) > 0.3 and abs(neighbour_correlation(noise)) < 0.1
    assert torch.equal(bank(tiny_corpus, glyph_source="noise"), noise)  # the same images in every run


def test_adapter_init_std_sets_the_adapters_initial_scale() -> None:
    default = GlyphEncoder(EncoderConfig(pool=0, patch=1), n_embd=64, res=40).adapter[0]
    fan_in = default.in_features
    assert default.weight.std().item() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.02)  # PyTorch's default
    scaled = GlyphEncoder(EncoderConfig(pool=0, patch=1, adapter_init_std=0.02), n_embd=64, res=40).adapter[0]
    assert scaled.weight.std().item() == pytest.approx(0.02, rel=0.02) and scaled.bias.abs().max().item() == 0
    for layer in GlyphEncoder(EncoderConfig(name="opt", adapter_init_std=0.02), n_embd=64, res=8).adapter:
        if isinstance(layer, torch.nn.Linear):  # every layer of a deep adapter
            assert layer.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_the_control_options_reach_the_run_config() -> None:
    inp = run_config("--input", "vision", "--glyph-permute", "3", "--glyph-source", "noise",
                     "--adapter-init-std", "0.02").model.input
    assert (inp.glyph_permute, inp.glyph_source, inp.encoder.adapter_init_std) == (3, "noise", 0.02)
    plain = run_config("--input", "vision").model.input
    assert (plain.glyph_permute, plain.glyph_source, plain.encoder.adapter_init_std) == (None, "font", 0.0)


def test_the_controls_grid_varies_one_control_per_run_and_the_report_keeps_them_apart() -> None:
    from hotstart.config import to_dict
    from hotstart.experiments.runs import Run, Selector, run_axes
    from hotstart.experiments.sweep import SCALES, grid_runs

    specs = grid_runs("controls", SCALES["cpu"])
    names = [s.name for s in specs]
    assert len(names) == len(set(names)) == 3 * 5 + 3 + 2
    assert names[:5] == ["hot-index-s0", "hot-simp-40x40-pool0-patch1-s0", "hot-simp-40x40-pool0-patch1-perm1-s0",
                         "hot-simp-40x40-pool0-patch1-noise-s0", "hot-simp-40x40-pool0-patch1-ainit0.02-s0"]
    # at gpt2-small the permuted glyphs, seed 0 first, then seeds 1 and 2 as the rule decided on seed 0
    assert names[-3:] == [f"hot-simp-40x40-pool0-patch1-perm1-gpt2-small-s{seed}" for seed in range(3)]
    runs = [Run(s.name, run_axes(to_dict(s.run_config(SCALES["cpu"], "D"))), [], None, {}) for s in specs]
    select = Selector(runs)
    reference = select("hot", "vision", res=40, pool=0, patch=1)
    assert sorted(r.name for r in reference) == [f"hot-simp-40x40-pool0-patch1-s{seed}" for seed in range(3)]
    permuted = select("hot", "vision", res=40, pool=0, patch=1, glyph_permute=1)
    assert len(permuted) == 3 and all("perm1" in r.name for r in permuted)
    assert len(select("hot", "vision", res=40, pool=0, patch=1, glyph_source="noise")) == 3
    assert len(select("hot", "vision", res=40, pool=0, patch=1, adapter_init_std=0.02)) == 3
    assert not select("hot", "vision")  # the paper's 8x8 setting: no control run stands in for it


def test_samples_to_reach_an_accuracy_interpolate_between_evaluations() -> None:
    from hotstart.experiments.controls import samples_to_reach

    rows = [{"samples": 2048, "val_acc": 0.05}, {"samples": 4096, "val_acc": 0.07}, {"samples": 6144, "val_acc": 0.11}]
    assert samples_to_reach(rows, 0.06) == pytest.approx(3072)
    assert samples_to_reach(rows, 0.10) == pytest.approx(4096 + 2048 * 0.75)
    assert samples_to_reach(rows, 0.05) == 2048 and samples_to_reach(rows, 0.12) is None


def test_a_bootstrap_interval_needs_two_values_and_brackets_the_statistic() -> None:
    import statistics

    from hotstart.experiments.controls import bootstrap_interval

    assert bootstrap_interval([5.0], statistics.fmean) is None
    low, high = bootstrap_interval([1.0, 2.0, 6.0], statistics.fmean)
    assert 1.0 <= low < statistics.fmean([1.0, 2.0, 6.0]) < high <= 6.0
    assert bootstrap_interval([1.0, 2.0, 6.0], statistics.fmean) == (low, high)  # seeded: the same every time


def _control_runs(curves: dict[str, list[float]], size: str | None = None):
    """The cpu controls grid's runs at the scale's decoder (or its runs at decoder `size`, every seed) as report
    runs, each evaluated at 2,048..10,240 samples with the accuracies `curves` gives its arm (keys: index,
    reference, perm, noise, ainit; seed s adds 0.002 * s)."""
    from hotstart.config import to_dict
    from hotstart.experiments.runs import Run, run_axes
    from hotstart.experiments.sweep import SCALES, grid_runs

    runs = []
    for spec in grid_runs("controls", SCALES["cpu"]):
        if spec.size:
            continue
        spec = replace(spec, size=size) if size else spec
        arm = ("index" if spec.kind == "index" else "perm" if spec.glyph_permute is not None else
               "noise" if spec.glyph_source != "font" else "ainit" if spec.adapter_init_std else "reference")
        rows = [{"samples": 2048 * (k + 1), "val_acc": acc + 0.002 * spec.seed, "val_loss": 7.0 - acc, "wall_s": 60.0 * k}
                for k, acc in enumerate(curves[arm])]
        cfg = to_dict(spec.run_config(SCALES["cpu"], "D"))
        runs.append(Run(spec.name, run_axes(cfg), rows, {"stop_reason": "max_samples"}, cfg))
    return runs


def test_the_controls_section_judges_each_control_by_its_paired_lead() -> None:
    from hotstart.experiments.controls import controls_section
    from hotstart.experiments.runs import Selector

    index = [0.04, 0.05, 0.06, 0.08, 0.10]
    reference = [0.05, 0.08, 0.10, 0.12, 0.13]
    runs = _control_runs({"index": index, "reference": reference, "perm": [a - 0.003 for a in reference],
                          "noise": [a + 0.015 for a in index], "ainit": index})
    text, rows = controls_section(Selector(runs))
    verdicts = {r["arm"]: r["verdict"] for r in rows}
    assert verdicts == {"40x40 not squeezed (reference)": "reference", "permuted glyphs": "keeps the lead",
                        "noise images": "keeps part of it", "adapter at index scale": "loses the lead"}
    ref = rows[0]
    assert ref["lead"] == pytest.approx(4.0) and ref["ratio"] == pytest.approx(0.122 / 0.082)
    # 8%: index at 8,192 / 7,987 / 7,782 samples (seeds 0-2, interpolated), the reference at 4,096 / 3,959 / 3,823
    assert ref["fewer_8"] == f"{(8192 + 7987.2 + 7782.4) / (4096 + 3959.5 + 3822.9):.2f}x" == "2.02x"
    assert ref["fewer_10"] == "1.69x"  # 10,035 against 5,939 samples on the means
    assert "| noise images | 3 |" in text and "**keeps part of it**" in text
    assert "most frequent character" not in text  # no floor given, none claimed
    assert "most frequent character scores 4.41% on the same" in controls_section(Selector(runs), 0.0441)[0]


def test_the_controls_section_waits_for_a_control_run() -> None:
    from hotstart.experiments.controls import controls_section
    from hotstart.experiments.runs import Selector

    runs = [r for r in _control_runs({k: [0.05] * 5 for k in ("index", "reference", "perm", "noise", "ainit")})
            if "perm" not in r.name and "noise" not in r.name and "ainit" not in r.name]
    text, rows = controls_section(Selector(runs))
    assert rows == [] and text.startswith("Not run yet")


def test_the_verdicts_give_40x40_not_squeezed_at_the_paper_decoder_its_own_row() -> None:
    from hotstart.experiments.runs import Selector
    from hotstart.experiments.verdicts import verdict_section

    index = [0.04, 0.05, 0.06, 0.08, 0.10]
    runs = _control_runs({"index": index, "reference": index, "perm": index, "noise": index, "ainit": index})
    big = [r for r in _control_runs({"index": index, "reference": [0.05, 0.09, 0.11, 0.12, 0.13], "perm": index,
                                     "noise": index, "ainit": index}, size="gpt2-small")
           if r.axes["kind"] == "index" or r.axes["glyph_permute"] is None and r.axes["glyph_source"] == "font"
           and not r.axes["adapter_init_std"]]  # index and the reference: fewer runs than small-cpu's, its base
    assert len(big) == 6
    _, rows = verdict_section(Selector(runs + big), plateau=0.044)
    claims = {r["claim"]: r["verdict"] for r in rows}
    assert claims["RQ2: hot start, vision 40x40 squeezed to an 8x8 grid well ahead of index early in training"] == "not measured"
    # 9.0 / 5.0 at 4,096 and 10.04 / 6.04 at 6,152 on the means of 3 seeds: ratio >= 1.5, lead > 1 pp and > 2 sd
    assert claims["RQ2 at the paper's decoder (gpt2-small): hot start, vision 40x40 not squeezed to an 8x8 grid"] \
        == "held at 4,096, 6,152"
    assert "RQ2 at the paper's decoder" not in verdict_section(Selector(runs), plateau=0.044)[0]


def test_a_control_with_fewer_seeds_or_still_training_says_so() -> None:
    from hotstart.experiments.controls import controls_section
    from hotstart.experiments.runs import Selector

    index, reference = [0.04, 0.05, 0.06, 0.08, 0.10], [0.05, 0.08, 0.10, 0.12, 0.13]
    runs = [r for r in _control_runs({"index": index, "reference": reference, "perm": reference, "noise": index,
                                      "ainit": index})
            if not (("perm" in r.name or "noise" in r.name) and not r.name.endswith("s0")) and "ainit" not in r.name]
    noise = next(r for r in runs if "noise" in r.name)
    noise.rows, noise.summary = noise.rows[:1], None  # evaluated at 2,048 samples so far, still training
    text, rows = controls_section(Selector(runs))
    arms = {r["arm"]: r for r in rows}
    assert arms["permuted glyphs"]["verdict"] == "keeps the lead (1 of 3 seeds so far)"
    assert arms["noise images"]["seeds"] == "1 (1 unfinished)" and arms["noise images"]["verdict"] == "not measured yet"
    assert arms["noise images"]["reach_8"] == "not yet (0/1)" and arms["noise images"]["fewer_8"] == "not yet"
    assert "8% in 2.02x fewer samples than index" in text and "10% in 1.69x fewer samples than index" in text


def test_a_target_reached_at_the_start_gives_no_ratio() -> None:
    from hotstart.experiments.controls import speedup

    runs = _control_runs({k: [0.07, 0.08, 0.09, 0.10, 0.11] for k in ("index", "reference", "perm", "noise", "ainit")})
    for run in runs:
        run.rows.insert(0, {"samples": 0, "val_acc": 0.065, "val_loss": 7.0, "wall_s": 0.0})  # above 6% untrained
    index = [r for r in runs if r.axes["kind"] == "index"]
    vision = [r for r in runs if r.axes["kind"] == "vision" and r.axes["glyph_permute"] is None
              and r.axes["glyph_source"] == "font" and not r.axes["adapter_init_std"]]
    assert speedup(index, vision, 0.06) == "at the start" and speedup(index, vision, 0.08) == "1.00x"
