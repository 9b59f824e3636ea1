"""The chunked head + cross-entropy of the training step matches the plain path, value and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hotstart.data.prepared import PAD_ID
from hotstart.models.decoder import DecoderConfig
from hotstart.models.fused_loss import chunk_rows, head_cross_entropy
from hotstart.models.hotstart_lm import HotStartLM, InputConfig, ModelConfig


def _plain_and_fused(dtype: torch.dtype | None, rows: int, targets: torch.Tensor):
    torch.manual_seed(0)
    hidden = torch.randn(targets.shape[0], 32, requires_grad=True)
    weight = (0.3 * torch.randn(97, 32)).requires_grad_()
    results = []
    for fused in (False, True):
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = (head_cross_entropy(hidden, weight, targets, PAD_ID, rows) if fused else
                    F.cross_entropy((hidden @ weight.t()).float(), targets, ignore_index=PAD_ID))
        results.append((loss.detach(), *torch.autograd.grad(2.5 * loss, (hidden, weight))))
    return results


@pytest.mark.parametrize("rows", [1, 64, 300, 1000])  # one row, uneven chunks, one chunk, more than all rows
def test_fp32_value_and_gradients_match_the_plain_path(rows: int) -> None:
    targets = torch.randint(1, 97, (300,))
    targets[::7] = PAD_ID  # padding is skipped, as F.cross_entropy's ignore_index does
    (plain_loss, plain_h, plain_w), (loss, grad_h, grad_w) = _plain_and_fused(None, rows, targets)
    torch.testing.assert_close(loss, plain_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad_h, plain_h, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_w, plain_w, rtol=1e-5, atol=1e-7)
    assert grad_h.dtype == grad_w.dtype == torch.float32


def test_under_bf16_autocast_it_matches_to_bf16_rounding() -> None:
    targets = torch.randint(1, 97, (300,))
    (plain_loss, plain_h, plain_w), (loss, grad_h, grad_w) = _plain_and_fused(torch.bfloat16, 64, targets)
    torch.testing.assert_close(loss, plain_loss, rtol=1e-5, atol=1e-5)  # the bf16 logits are the same
    # bf16 keeps 8 bits of mantissa: allow about one bf16 step of the largest gradient element
    # (the plain path also rounds the incoming gradient's scale into bf16, this one applies it after)
    torch.testing.assert_close(grad_h, plain_h, rtol=0.02, atol=2**-8 * plain_h.abs().max().item())
    torch.testing.assert_close(grad_w, plain_w, rtol=0.02, atol=2**-8 * plain_w.abs().max().item())


def test_all_padding_gives_nan_as_the_plain_path_does() -> None:
    targets = torch.full((10,), PAD_ID)
    hidden, weight = torch.randn(10, 8), torch.randn(5, 8)
    plain_loss = F.cross_entropy(hidden @ weight.t(), targets, ignore_index=PAD_ID)
    loss = head_cross_entropy(hidden, weight, targets, PAD_ID, 4)
    assert torch.isnan(plain_loss) and torch.isnan(loss)


def test_chunks_stay_a_few_megabytes_for_any_vocabulary() -> None:
    assert chunk_rows(5162) * 5162 * 4 <= 16 << 20 < (chunk_rows(5162) + 1) * 5162 * 4
    assert chunk_rows(10**8) == 1


def test_the_training_forward_gives_the_plain_loss_and_gradients_without_logits() -> None:
    torch.manual_seed(0)
    model = HotStartLM(ModelConfig(vocab_size=50, input=InputConfig(kind="index"),
                                   decoder=DecoderConfig(n_layer=1, n_head=2, n_embd=16, n_positions=32)))
    ids = torch.randint(1, 50, (3, 9))
    grads = []
    for return_logits in (True, False):
        model.zero_grad()
        logits, loss = model(ids[:, :-1], ids[:, 1:], return_logits=return_logits)
        assert (logits is None) == (not return_logits)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    for fused, plain in zip(grads[1][1], grads[0][1], strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-7)
