"""The softmax head and its cross-entropy in one pass over row chunks, for training.

The plain path materialises the (B x T, V) logits, then log-softmax saves another tensor of that size
for the backward pass, and the backward pass allocates two more. At the small-cpu size (batch 128 x
127 positions, 5,162 characters) each is 336 MB, and on Linux every such block is a fresh mmap whose
pages the kernel must zero again at every step: we saw a tenth to a fifth of a CPU training step's
time go to the kernel doing this (system time under `/usr/bin/time -v` and in /proc/PID/stat).

Here the forward pass walks the rows in chunks of a few MB, and for each chunk computes the logits,
the loss, the gradient of the loss with respect to those logits (softmax minus one-hot), and from it
the gradients of the hidden states and of the head's weight; the chunk's logits are then dropped. The
backward pass only scales the stored gradients by the incoming one. The arithmetic is the same as the
plain path's (the same three matmuls per chunk, softmax in fp32, the same autocast dtypes); only the
order of the sums differs. Evaluation and generation keep the plain path: they need the logits.
"""

from __future__ import annotations

import torch

# Rows per chunk are chosen so a chunk's fp32 logits stay near this size: small enough to be served
# from the allocator's heap (glibc hands blocks over 32 MiB to mmap), large enough for efficient matmuls.
CHUNK_BYTES = 16 << 20


def chunk_rows(vocab_size: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk for a head over `vocab_size` classes."""
    return max(1, chunk_bytes // (4 * vocab_size))


class _HeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int,
                rows: int) -> torch.Tensor:
        device = hidden.device.type
        # the caller's autocast decides the matmul dtype, as it would for nn.Linear; the casts are
        # done here once, by hand, with autocast off, so the weight is not cast again for every chunk
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        valid = targets != ignore_index
        n_valid = valid.sum()
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        with torch.autocast(device, enabled=False):
            w = weight.to(dtype)
            for start in range(0, hidden.shape[0], rows):
                h = hidden[start : start + rows].to(dtype)
                t, keep = targets[start : start + rows], valid[start : start + rows]
                logits = (h @ w.t()).float()  # (rows, V)
                log_norm = torch.logsumexp(logits, dim=-1)
                safe_t = torch.where(keep, t, 0)  # an ignored row's target may be out of range
                picked = logits.gather(1, safe_t[:, None]).squeeze(1)
                total += torch.where(keep, log_norm - picked, 0.0).sum()
                # d loss / d logits = (softmax - one_hot) / n_valid on kept rows, 0 on ignored ones,
                # computed in place over the logits, which are not needed any more
                grad = logits.sub_(log_norm[:, None]).exp_()
                grad[torch.arange(grad.shape[0], device=grad.device), safe_t] -= 1.0
                grad = grad.mul_((keep / n_valid)[:, None]).to(dtype)
                grad_hidden[start : start + rows] = grad @ w
                grad_weight += grad.t() @ h
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total / n_valid  # no valid target: 0/0 = nan, as F.cross_entropy gives

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None


def head_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int,
                       rows: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of `hidden @ weight.T` against `targets`, skipping `ignore_index`, without
    ever holding all the logits. hidden (N, d), weight (V, d), targets (N,); `rows` per chunk (default
    from the vocabulary size). Same value and gradients as
    F.cross_entropy((hidden @ weight.T).float(), targets, ignore_index=ignore_index)."""
    return _HeadCrossEntropy.apply(hidden, weight, targets, ignore_index, rows or chunk_rows(weight.shape[0]))
