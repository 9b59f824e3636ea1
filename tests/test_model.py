"""Both input paths and all three encoders: shapes, gradients, and the glyph-embedding cache."""

from __future__ import annotations

import pytest
import torch

from hotstart.data.prepared import SPECIALS
from hotstart.errors import HotStartError
from hotstart.models.decoder import decoder_size
from hotstart.models.encoders import EncoderConfig, GlyphEncoder
from hotstart.models.hotstart_lm import HotStartLM, InputConfig, ModelConfig, glyph_bank
from hotstart.render.glyph import RenderConfig

TOKENS = list(SPECIALS) + list("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年山水火木")


def tiny_model(kind: str, encoder: str = "simp", res: int = 8, seed: int = 0) -> HotStartLM:
    torch.manual_seed(seed)
    inp = InputConfig(kind=kind, encoder=EncoderConfig(name=encoder), render=RenderConfig(res=res))
    glyphs = glyph_bank(TOKENS, SPECIALS, inp.render, progress=False) if kind == "vision" else None
    return HotStartLM(ModelConfig(vocab_size=len(TOKENS), input=inp, decoder=decoder_size("tiny")), glyphs)


@pytest.mark.parametrize("kind,encoder", [("index", "simp"), ("vision", "orig"), ("vision", "opt"), ("vision", "simp")])
def test_every_input_path_runs_forward_and_backward(kind: str, encoder: str) -> None:
    model = tiny_model(kind, encoder)
    ids = torch.randint(3, len(TOKENS), (2, 16))
    logits, loss = model(ids[:, :-1], ids[:, 1:])
    assert logits.shape == (2, 15, len(TOKENS))
    loss.backward()
    input_grads = [p.grad for p in model.input.parameters() if p.requires_grad]
    assert input_grads and all(g is not None and torch.isfinite(g).all() for g in input_grads)
    assert any(g.abs().sum() > 0 for g in input_grads)
    assert model.lm_head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", ["orig", "opt", "simp"])
@pytest.mark.parametrize("res", [4, 8, 20])
def test_encoders_accept_any_resolution(encoder: str, res: int) -> None:
    enc = GlyphEncoder(EncoderConfig(name=encoder), n_embd=64)
    assert enc(torch.rand(5, res, res)).shape == (5, 64)


def test_unknown_encoder_name_is_a_clear_error() -> None:
    with pytest.raises(HotStartError, match="unknown encoder 'resnet'"):
        GlyphEncoder(EncoderConfig(name="resnet"), n_embd=64)


def test_eval_mode_cached_table_gives_the_training_path_embeddings() -> None:
    model = tiny_model("vision", "orig")
    ids = torch.randint(0, len(TOKENS), (3, 12))  # repeated IDs: the training path encodes each once
    model.train()
    with torch.enable_grad():
        trained_path = model.input(ids)  # only the batch's distinct glyphs, scattered back
    assert trained_path.requires_grad
    table_calls = []
    cached_table = model.input.table
    model.input.table = lambda: table_calls.append(1) or cached_table()  # type: ignore[method-assign]
    model.eval()
    with torch.no_grad():
        table_path = model.input(ids)  # the whole vocabulary encoded once, then looked up
    assert table_calls == [1], "evaluation did not use the cached vocabulary table"
    assert table_path.shape == (3, 12, 64)
    torch.testing.assert_close(table_path, trained_path.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_cached_table_is_rebuilt_after_an_optimizer_step(fused: bool) -> None:
    # the fused AdamW kernel updates weights without bumping their version counters
    model = tiny_model("vision", "simp")
    ids = torch.arange(len(TOKENS)).unsqueeze(0)
    model.eval()
    with torch.no_grad():
        before = model.input(ids).clone()
        assert model.input.table() is model.input.table()  # cached while nothing changes
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, fused=fused)
    _, loss = model(ids[:, :-1], ids[:, 1:])
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        after = model.input(ids)
        expected = model.input.embed_glyphs(model.input.glyphs)[ids]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)


def test_cached_table_follows_weights_edited_in_eval_mode() -> None:
    model = tiny_model("vision", "simp").eval()
    ids = torch.arange(len(TOKENS)).unsqueeze(0)
    with torch.no_grad():
        before = model.input(ids).clone()
        for p in model.input.parameters():
            p.mul_(0.5)
        after = model.input(ids)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, model.input.embed_glyphs(model.input.glyphs)[ids])


def test_index_and_vision_runs_with_one_seed_start_from_the_same_decoder() -> None:
    index, vision = tiny_model("index", seed=3), tiny_model("vision", seed=3)
    for (name, a), (_, b) in zip(index.decoder.state_dict().items(), vision.decoder.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(index.lm_head.weight, vision.lm_head.weight)


def test_parameter_counts_cover_every_part() -> None:
    counts = tiny_model("vision", "opt").parameter_counts()
    assert counts["input"] == counts["input.encoder"] + counts["input.adapter"]
    assert counts["total"] == counts["input"] + counts["decoder"] + counts["lm_head"]
    assert counts["lm_head"] == 64 * len(TOKENS)
    index_counts = tiny_model("index").parameter_counts()
    assert index_counts["input"] == 64 * len(TOKENS)


def test_unknown_decoder_size_is_a_clear_error() -> None:
    with pytest.raises(HotStartError, match="unknown decoder size 'huge'"):
        decoder_size("huge")
