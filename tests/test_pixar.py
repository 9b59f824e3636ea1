"""PIXAR (`hotstart train --objective pixar`): stage 1 is next-patch prediction over binary 8x8 lines with
L = 2 and a Bernoulli head; stage 2 starts from a stage-1 run and adds a patch discriminator and an
adversarial loss with an automatic weight (models/pixar.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.models.pixar import AdversarialConfig, AdversarialPixelLM
from hotstart.models.pixel_lm import PixelLMConfig
from hotstart.render.line import LineRenderConfig, LineRenderer

TEXTS = ["今天天气很好,我们去公园散步吧。", "新华社北京电", "一二三四五六七八九十"]


def pixar_args(corpus: PreparedCorpus, out: Path, *extra: str) -> list[str]:
    return ["train", "--objective", "pixar", "--data", str(corpus.path), "--size", "tiny", "--max-patches", "40",
            "--batch-size", "8", "--max-samples", "32", "--eval-every", "16", "--dense-until", "32",
            "--eval-sequences", "8", "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet", *extra]


def tiny_adversarial() -> tuple[AdversarialPixelLM, torch.Tensor, torch.Tensor]:
    cfg = PixelLMConfig(size="tiny", line=LineRenderConfig(patch=8, mode="binary", max_patches=24), head="bernoulli",
                        patch_len=2)
    torch.manual_seed(0)
    model = AdversarialPixelLM(cfg, AdversarialConfig(disc_dropout=0.0))
    batch = LineRenderer(cfg.line).render_batch(TEXTS)
    return model, torch.from_numpy(batch.patches), torch.from_numpy(batch.lengths)


def test_the_adaptive_weight_balances_the_two_gradients_at_the_head() -> None:
    model, patches, lengths = tiny_adversarial()
    model.train()
    loss = model(patches, lengths)
    parts = model.last_parts
    # recompute both terms by hand: the weight is |grad rec| / |grad adv| at the head's weight matrix
    losses, used, out = model.position_outputs(patches, lengths)
    rec = (losses * used).sum() / used.sum()
    adv = (F.softplus(-model.discriminator(torch.sigmoid(out))) * used).sum() / used.sum()
    g_rec, = torch.autograd.grad(rec, model.head.weight, retain_graph=True)
    g_adv, = torch.autograd.grad(adv, model.head.weight)
    assert parts["adv_weight"] == pytest.approx((g_rec.norm() / (g_adv.norm() + 1e-4)).item(), rel=1e-4)
    assert parts["rec"] == pytest.approx(rec.item(), rel=1e-5) and parts["adv"] == pytest.approx(adv.item(), rel=1e-5)
    assert loss.item() == pytest.approx(parts["rec"] + parts["adv_weight"] * parts["adv"] + parts["disc"], rel=1e-5)


def test_the_discriminator_learns_only_from_its_own_loss_and_the_generator_only_from_its_own() -> None:
    model, patches, lengths = tiny_adversarial()
    model.train()
    model(patches, lengths).backward()
    disc_grads = {n: p.grad.clone() for n, p in model.discriminator.named_parameters()}
    # the discriminator's gradient is exactly that of its own loss: the generator's adv term does not reach it
    model.zero_grad()
    _, used, out = model.position_outputs(patches, lengths)
    real, fake = model.discriminator(model.group(patches)), model.discriminator(torch.sigmoid(out).detach())
    ((F.softplus(-real) + F.softplus(fake)) * used).sum().div(used.sum() * 2).backward()
    for name, p in model.discriminator.named_parameters():
        assert torch.allclose(p.grad, disc_grads[name], atol=1e-6), name


def test_stage_2_starts_from_stage_1_weights_and_runs_its_steps(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    stage1 = tmp_path / "stage1"
    assert main(pixar_args(tiny_corpus, stage1, "--cell", "char")) == 0
    config = yaml.safe_load((stage1 / "config.yaml").read_text())
    model = config["model"]
    assert (model["head"], model["patch_len"], model["line"]["patch"], model["line"]["mode"]) == ("bernoulli", 2, 8, "binary")
    stage2 = tmp_path / "stage2"
    # patience 1 would end any other run at its first evaluation without a better val_loss
    assert main(pixar_args(tiny_corpus, stage2, "--stage", "2", "--stage1-run", str(stage1), "--patience", "1",
                           "--stage1-checkpoint", "last")) == 0
    rows = [json.loads(line) for line in (stage2 / "metrics.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [0, 16, 32]
    first, last = rows[0], rows[-1]
    assert "train_adv_weight" in last and 0 <= last["val_disc_real_acc"] <= 1 and "val_acc" in last
    start = load_file(str(stage1 / "checkpoints" / "last.safetensors"))
    best = load_file(str(stage2 / "checkpoints" / "best.safetensors"))
    assert all(torch.equal(start[k], best[k]) for k in start) or first["val_loss"] > min(r["val_loss"] for r in rows)
    assert any(k.startswith("discriminator.") for k in load_file(str(stage2 / "checkpoints" / "last.safetensors")))
    summary = json.loads((stage2 / "summary.json").read_text())
    assert summary["stage"] == 2 and summary["stop_reason"] == "max_samples" and summary["parameters"]["discriminator"] > 0
    # stage 1 at 0 samples of stage 2 is stage 1's last evaluation: the same val_loss
    stage1_rows = [json.loads(line) for line in (stage1 / "metrics.jsonl").read_text().splitlines()]
    assert first["val_loss"] == pytest.approx(stage1_rows[-1]["val_loss"], rel=1e-5)
    capsys.readouterr()
    assert main(["generate", str(stage2), "--checkpoint", "last", "--prompt", "新华社", "--max-new", "4",
                 "--out", str(tmp_path / "gen.png")]) == 0
    assert json.loads(capsys.readouterr().out)["generated_patches"] == 4


@pytest.mark.parametrize("extra, words", [
    (["--stage", "2"], "--stage 2 starts from a stage-1 model; pass --stage1-run"),
    (["--stage", "2", "--stage1-run", "nowhere"], "is not a run folder"),
    (["--stage1-run", "nowhere"], "add --stage 2"),
    (["--stage", "3"], "--stage must be 1 (likelihood) or 2"),
    (["--adversarial-weight", "1", "--objective", "next-patch"], "--adversarial-weight is not an option of --objective next-patch"),
])
def test_bad_pixar_stages_are_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture, extra: list, words: str) -> None:
    assert main(pixar_args(tiny_corpus, tmp_path / "bad", *extra)) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "bad").exists()


def test_the_discriminator_judges_what_generation_emits_with_the_gradient_passed_straight_through() -> None:
    cfg = PixelLMConfig(size="tiny", line=LineRenderConfig(patch=8, mode="binary", max_patches=24), head="bernoulli",
                        patch_len=2)
    torch.manual_seed(0)
    model = AdversarialPixelLM(cfg, AdversarialConfig(disc_dropout=0.0, disc_sees="emitted"))
    batch = LineRenderer(cfg.line).render_batch(TEXTS)
    patches, lengths = torch.from_numpy(batch.patches), torch.from_numpy(batch.lengths)
    seen = []
    model.discriminator.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    model.train()
    model(patches, lengths).backward()
    assert len(seen) == 3  # the generator's adv term, then real and fake for the discriminator's own loss
    for positions in seen:
        assert torch.equal(positions, positions.round())  # binary, as real patches are: no grey gives fakes away
    assert model.last_parts["adv_weight"] > 0 and model.head.weight.grad.abs().sum() > 0
    # the gradient of the adversarial term reaches the head through the threshold (straight through)
    _, used, out = model.position_outputs(patches, lengths)
    frozen = {name: p.detach() for name, p in model.discriminator.named_parameters()}
    adv = (F.softplus(-torch.func.functional_call(model.discriminator, frozen, (model._judged(torch.sigmoid(out)),)))
           * used).sum()
    grad, = torch.autograd.grad(adv, model.head.weight)
    assert grad.abs().sum() > 0


def test_a_new_stage_2_judges_what_generation_emits_and_a_saved_one_kept_soft() -> None:
    from hotstart.cli import _run_config, build_parser
    from hotstart.config import from_dict

    assert from_dict(AdversarialConfig, {}).disc_sees == "soft"  # as saved runs trained
    new = _run_config(build_parser().parse_args(["train", "--data", "D", "--out", "R", "--objective", "pixar"]))
    assert new.adversarial.disc_sees == "emitted"
