"""The decoder every autoregressive model of the toolkit is built on, fed through `inputs_embeds`.

    gpt2    `transformers`' GPT2Model: HotStart's decoder (the paper's GPT-2)
    llama   `transformers`' LlamaModel: RMSNorm, SwiGLU, rotary positions, grouped-query attention, the
            block PixelGPT/DualGPT and PIXAR describe (shared/papers/pixelgpt-dualgpt.md, pixar.md)

Every model brings its own input path (character IDs, glyphs, patches of pixels) and its own head, so
the decoder's token table is never read: it is kept at 1 x n_embd and frozen. One size table serves
both kinds, so an index LM, a vision LM and a pixel LM of the same size and kind differ only in what
goes in and what comes out.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import GPT2Config, GPT2Model, LlamaConfig, LlamaModel

from ..config import flag
from ..errors import HotStartError

DECODER_KINDS = ("gpt2", "llama")


@dataclass
class DecoderConfig:
    """Decoder shape, in GPT-2's own names, and which block it is made of."""

    n_layer: int = field(default=4, metadata=flag(check="positive_int"))
    """Transformer blocks (overrides the --size's)."""
    n_head: int = field(default=4, metadata=flag(check="positive_int"))
    """Attention heads (overrides the --size's)."""
    n_embd: int = field(default=256, metadata=flag(check="positive_int"))
    """Hidden width (overrides the --size's)."""
    n_positions: int = 1024
    """Longest sequence: GPT-2's position table, Llama's rotary cache (>= the corpus seq_len)."""
    dropout: float = field(default=0.0, metadata=flag(check="dropout_rate"))
    """Residual, embedding and attention dropout (GPT-2 uses 0.1); llama: attention dropout only, as
    LlamaModel has no other."""
    kind: str = field(default="gpt2", metadata=flag("decoder"))
    """gpt2 (HotStart's decoder) or llama (RMSNorm, SwiGLU, rotary, grouped-query attention)."""
    n_kv_head: int = field(default=0, metadata=flag(check="positive_int"))
    """llama: key/value heads of grouped-query attention; 0 = half the heads (our reading: the papers
    name GQA, not its ratio; a single head keeps one)."""

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field."""
        if self.kind not in DECODER_KINDS:
            raise HotStartError(f"unknown decoder '{self.kind}'; choose one of {', '.join(DECODER_KINDS)}")
        if self.n_embd % self.n_head:
            raise HotStartError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.kind == "llama" and self.n_head % self.kv_heads:
            raise HotStartError(f"n_kv_head {self.kv_heads} does not divide n_head {self.n_head}")

    @property
    def kv_heads(self) -> int:
        """llama's key/value heads, n_kv_head or its default."""
        return self.n_kv_head or max(1, self.n_head // 2)

    @property
    def intermediate(self) -> int:
        """llama's SwiGLU width: 8/3 n_embd, rounded up to a multiple of 32, so its three matrices hold
        as many weights as GPT-2's two of 4 n_embd (LLaMA's own rule, without its multiple of 256)."""
        return -(-8 * self.n_embd // 3 // 32) * 32


# Named sizes. Dropout is off below GPT-2 small: those sizes train for short budgets where the
# model underfits, and dropout only slows the hot-start window down.
DECODER_SIZES: dict[str, DecoderConfig] = {
    "tiny": DecoderConfig(n_layer=2, n_head=2, n_embd=64),  # tests: seconds
    "small-cpu": DecoderConfig(n_layer=4, n_head=4, n_embd=256),  # hot-start window in minutes on 2 cores
    "medium-cpu": DecoderConfig(n_layer=6, n_head=6, n_embd=384),  # the decoder-size ablation's larger step
    "gpt2-small": DecoderConfig(n_layer=12, n_head=12, n_embd=768, dropout=0.1),  # the paper's decoder
}


def decoder_size(name: str, kind: str = "gpt2") -> DecoderConfig:
    """The named decoder size made of `kind` blocks, or a HotStartError listing the names."""
    if name not in DECODER_SIZES:
        raise HotStartError(f"unknown decoder size '{name}'; choose one of {', '.join(DECODER_SIZES)}")
    d = DecoderConfig(**{**vars(DECODER_SIZES[name]), "kind": kind})
    d.validate()
    return d


def build_decoder(d: DecoderConfig) -> nn.Module:
    """The `transformers` decoder of shape `d`; its (never read) token table frozen. Called as
    `decoder(inputs_embeds=x, use_cache=False).last_hidden_state`: (B, T, n_embd) -> (B, T, n_embd)."""
    d.validate()
    if d.kind == "gpt2":
        config = GPT2Config(
            vocab_size=1, n_positions=d.n_positions, n_embd=d.n_embd, n_layer=d.n_layer, n_head=d.n_head,
            resid_pdrop=d.dropout, embd_pdrop=d.dropout, attn_pdrop=d.dropout, use_cache=False,
            # GPT-2's tanh-approximated GELU (gelu_new), computed by PyTorch's fused kernel instead of
            # five separate elementwise ops: same function, about a tenth less time per step on CPU
            activation_function="gelu_pytorch_tanh",
            bos_token_id=None, eos_token_id=None,  # no GPT-2 BPE specials: our vocabularies have their own
        )
        config._attn_implementation = "sdpa"
        decoder: nn.Module = GPT2Model(config)
    else:
        config = LlamaConfig(
            vocab_size=1, hidden_size=d.n_embd, intermediate_size=d.intermediate, num_hidden_layers=d.n_layer,
            num_attention_heads=d.n_head, num_key_value_heads=d.kv_heads, max_position_embeddings=d.n_positions,
            attention_dropout=d.dropout, rms_norm_eps=1e-6, use_cache=False,
            bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )
        config._attn_implementation = "sdpa"
        decoder = LlamaModel(config)
    decoder.get_input_embeddings().weight.requires_grad_(False)
    return decoder


def decoder_parameters(d: DecoderConfig) -> int:
    """Trainable parameters of a decoder of shape `d` (its frozen 1 x n_embd token table not counted)."""
    with torch.device("meta"):
        decoder = build_decoder(d)
    return sum(p.numel() for p in decoder.parameters() if p.requires_grad)


def decode_step(decoder: nn.Module, embeds: torch.Tensor, cache: object = None) -> tuple[torch.Tensor, object]:
    """(B, T, n_embd) positions after those `cache` holds (None: the first ones) -> their hidden states
    and the cache grown by them: generation that runs each new position alone. transformers 5 names
    the cache argument and output `cache`, earlier releases `past_key_values`."""
    name = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
    out = decoder(inputs_embeds=embeds, use_cache=True, **({name: cache} if cache is not None else {}))
    return out.last_hidden_state, getattr(out, name)
