"""Tests for hotstart.models.mae: PIXEL-M4's masked autoencoder over rendered lines (span masking,
the line on a square grid, ViTMAE masking exactly our spans, the loss on masked patches only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotstart.errors import HotStartError
from hotstart.models.mae import MAEConfig, PixelMAE, mask_noise, span_mask
from hotstart.render.line import LineRenderConfig, LineRenderer

TEXT = "我们在这里测试一个中文句子的渲染速度，看看能有多快。" * 30


def _runs(row: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a row."""
    edges = np.diff(np.concatenate([[0], row.astype(int), [0]]))
    return (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()


def test_span_mask_masks_exactly_the_count_in_spans_inside_each_lines_text() -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([529, 300, 40, 10])
    mask = span_mask(lengths, 529, 133, 6, rng)
    assert mask.sum(axis=1).tolist() == [133] * 4
    assert not mask[1, 300:].any()  # never on padding while text is left
    assert mask[2, :133].all() and mask[3, :133].all()  # lines shorter than the count: padding makes it up
    spans = span_mask(np.full(200, 529), 529, 133, 1, rng)  # spans of 1 that may touch
    assert spans.sum(axis=1).tolist() == [133] * 200
    long = np.array([max(_runs(row)) for row in span_mask(np.full(200, 529), 529, 133, 6, rng)])
    assert long.max() > 6 and np.median([len(_runs(r)) for r in span_mask(np.full(50, 529), 529, 133, 6, rng)]) > 25


def test_span_mask_spans_are_up_to_max_span_long_before_they_touch() -> None:
    rng = np.random.default_rng(1)
    lengths = np.full(400, 529)
    # with a tiny count the spans are few and rarely touch: then each run is one span
    runs = [r for row in span_mask(lengths, 529, 12, 6, rng) for r in _runs(row)]
    assert max(runs) <= 12 and sorted(set(runs))[:6] == [1, 2, 3, 4, 5, 6]
    assert np.mean([r <= 6 for r in runs]) > 0.95


def test_span_mask_is_reproducible_from_its_seed() -> None:
    lengths = np.array([529, 77])
    a = span_mask(lengths, 529, 133, 6, np.random.default_rng(5))
    b = span_mask(lengths, 529, 133, 6, np.random.default_rng(5))
    c = span_mask(lengths, 529, 133, 6, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.fixture(scope="module")
def lines() -> tuple[torch.Tensor, torch.Tensor]:
    batch = LineRenderer(LineRenderConfig()).render_batch([TEXT, TEXT[7:], "短句子"])
    return torch.from_numpy(batch.patches), torch.from_numpy(batch.lengths)


def test_the_line_is_laid_out_row_by_row_on_the_square_grid_vitmae_cuts(lines: tuple[torch.Tensor, torch.Tensor]) -> None:
    patches, _ = lines
    model = PixelMAE(MAEConfig(size="tiny"))
    image = model.to_image(patches)  # (B, 1, 368, 368)
    assert image.shape == (3, 1, 368, 368)
    np.testing.assert_array_equal(image[0, 0, :16, 16:32].numpy(), patches[0, 1].numpy())  # patch 1: row 0, column 1
    np.testing.assert_array_equal(image[0, 0, 16:32, :16].numpy(), patches[0, 23].numpy())  # patch 23: row 1
    np.testing.assert_array_equal(model.mae.patchify(image).reshape(3, 529, 16, 16).numpy(), patches.numpy())


def test_vitmae_masks_exactly_the_span_mask(lines: tuple[torch.Tensor, torch.Tensor]) -> None:
    patches, lengths = lines
    model = PixelMAE(MAEConfig(size="tiny"))
    mask = torch.from_numpy(span_mask(lengths.numpy(), 529, model.config.n_masked, 6, np.random.default_rng(0)))
    out = model.mae(pixel_values=model.to_image(patches), noise=mask_noise(mask))
    assert torch.equal(out.mask.bool(), mask)
    assert model.config.n_masked == 133  # 25% of 529, as ViTMAE rounds: 529 - int(529 * 0.75)


def test_the_loss_is_the_normalised_pixel_error_of_the_masked_patches_only(lines: tuple[torch.Tensor, torch.Tensor]) -> None:
    patches, lengths = lines
    model = PixelMAE(MAEConfig(size="tiny")).eval()
    mask = torch.from_numpy(span_mask(lengths.numpy(), 529, 133, 6, np.random.default_rng(0)))
    loss, logits = model(patches, mask)
    target = patches.reshape(3, 529, -1)
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = ((logits - target) ** 2).mean(-1)
    torch.testing.assert_close(loss, per_patch[mask].mean())
    changed = patches.clone()
    changed[~mask] = 1 - changed[~mask]  # visible patches differ, so the prediction does, but not the target
    assert not torch.equal(model(changed, mask)[0], loss)


def test_line_losses_are_each_lines_own_loss_and_average_to_the_batch_loss(lines: tuple[torch.Tensor, torch.Tensor]) -> None:
    patches, lengths = lines
    model = PixelMAE(MAEConfig(size="tiny")).eval()
    mask = torch.from_numpy(span_mask(lengths.numpy(), 529, 133, 6, np.random.default_rng(0)))
    with torch.no_grad():
        per_line = model.line_losses(patches, mask)
        assert per_line.shape == (3,)
        torch.testing.assert_close(per_line.mean(), model(patches, mask)[0])  # every line masks 133 patches
        torch.testing.assert_close(per_line[2], model(patches[2:], mask[2:])[0])  # the short line alone


def test_a_few_steps_lower_the_loss_and_reconstruct_keeps_visible_patches(lines: tuple[torch.Tensor, torch.Tensor]) -> None:
    torch.manual_seed(0)
    patches, lengths = lines
    model = PixelMAE(MAEConfig(size="tiny"))
    mask = torch.from_numpy(span_mask(lengths.numpy(), 529, 133, 6, np.random.default_rng(0)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss, _ = model(patches, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0]  # measured: 0.678 to 0.609 (0.90)
    shown = model.reconstruct(patches, mask)
    assert shown.shape == patches.shape and 0 <= shown.min() and shown.max() <= 1
    torch.testing.assert_close(shown[~mask], patches[~mask])
    assert not torch.equal(shown[mask], patches[mask])


@pytest.mark.parametrize("settings, words", [({"size": "huge"}, "unknown MAE size"),
                                             ({"line": LineRenderConfig(max_patches=500)}, "square number"),
                                             ({"line": LineRenderConfig(mode="colour")}, "mode"),
                                             ({"mask_ratio": 1.0}, "mask_ratio"), ({"max_span": 0}, "max_span")])
def test_a_bad_mae_setting_is_refused_by_name(settings: dict, words: str) -> None:
    with pytest.raises(HotStartError, match=words):
        PixelMAE(MAEConfig(**{"size": "tiny", **settings}))


# ----------------------------------------------------------------------------- triage: does it learn at all?


def test_the_mae_has_its_fixed_sin_cos_positions_in_encoder_and_decoder() -> None:
    # transformers 5 leaves them at zero for a model built from a config; then every masked patch gets the
    # same decoder input and the MAE can predict only one mean patch (what the family runs before 0.4 did)
    torch.manual_seed(0)
    mae = PixelMAE(MAEConfig(size="tiny", line=LineRenderConfig(max_patches=16))).mae
    encoder, decoder = mae.vit.embeddings.position_embeddings, mae.decoder.decoder_pos_embed
    for table in (encoder, decoder):
        assert not table.requires_grad  # fixed, as MAE's
        rows = table[0, 1:]  # (N, width): one row per patch position, the class token's aside
        assert torch.cdist(rows, rows).fill_diagonal_(1.0).min() > 0.1  # every position told apart
    assert mae.vit.embeddings.cls_token.any() and mae.decoder.mask_token.any()


def _mae_zero_loss(model: PixelMAE, patches: torch.Tensor, mask: torch.Tensor) -> float:
    """The loss of predicting zero for every masked patch, in the loss's normalised pixel space (each patch's
    own mean: the trivial floor)."""
    target = model.mae.patchify(model.to_image(patches))
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
    return float(((target ** 2).mean(-1) * mask).sum() / mask.sum())


@pytest.mark.slow
def test_a_tiny_mae_memorises_one_batch_of_lines() -> None:
    # lines long enough that each keeps visible text beside its masked spans (a line whose text patches are
    # no more than the masked count is masked whole: nothing is left to tell it from another)
    torch.manual_seed(0)
    line = LineRenderConfig(max_patches=16)
    cfg = MAEConfig(size="tiny", line=line)
    text = "我们在北京学习中文和数学，今天天气很好。人工智能正在改变世界的每一个角落。他说明天会下雨，所以带伞。"
    batch = LineRenderer(line).render_batch([text[9 * i : 9 * i + 14] for i in range(3)])
    patches = torch.from_numpy(batch.patches)
    mask = torch.from_numpy(span_mask(batch.lengths, cfg.max_patches, cfg.n_masked, cfg.max_span, np.random.default_rng(0)))
    model = PixelMAE(cfg)
    floor = _mae_zero_loss(model, patches, mask)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    for _ in range(200):
        loss, _ = model(patches, mask)
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
    assert loss.item() < 0.1 * floor, (loss.item(), floor)
