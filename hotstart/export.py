"""Export a run to a plain `transformers` folder, and generate text from a run.

A trained HotStart model *is* a GPT-2 (or, with `--decoder llama`, a Llama) language model once its
input path is written down as an embedding table: the index path already is one, and a vision model's
glyph encoder gives every vocabulary character one fixed vector, so encoding each glyph once bakes the
encoder into the token table. The export is therefore a `GPT2LMHeadModel` or `LlamaForCausalLM`
(untied head) plus a character-level fast tokenizer,
loadable with `AutoModelForCausalLM` / `AutoTokenizer` by code that never imports hotstart. The
encoder weights and render settings are kept beside it in `hotstart/`, so the table can be rebuilt
or extended to characters outside the vocabulary.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from .data.prepared import PAD_ID, SEP_ID, SPECIALS, UNK_ID, Vocab
from .errors import HotStartError
from .models.hotstart_lm import HotStartLM


@torch.no_grad()
def input_table(model: HotStartLM) -> torch.Tensor:
    """(V, n_embd) fp32 vectors the model feeds the decoder for each vocabulary ID."""
    model.eval()
    ids = torch.arange(model.config.vocab_size, device=model.lm_head.weight.device)
    return model.input(ids.unsqueeze(0)).squeeze(0).float().cpu()


def to_transformers(model: HotStartLM) -> GPT2LMHeadModel | LlamaForCausalLM:
    """The same network as a `transformers` causal LM (GPT2LMHeadModel or LlamaForCausalLM, as its
    decoder): decoder weights copied, input path baked into the token table."""
    if model.config.head == "glyph":
        raise HotStartError("a run with --head glyph scores characters with a per-character bias that the head of "
                            "GPT2LMHeadModel and LlamaForCausalLM cannot hold; export runs with the linear head")
    config = model.decoder.config.to_dict()
    config.update(vocab_size=model.config.vocab_size, tie_word_embeddings=False, bos_token_id=SEP_ID,
                  eos_token_id=SEP_ID, pad_token_id=PAD_ID, use_cache=True)
    llama = model.config.decoder.kind == "llama"
    hf = LlamaForCausalLM(LlamaConfig.from_dict(config)) if llama else GPT2LMHeadModel(GPT2Config.from_dict(config))
    body = hf.model if llama else hf.transformer
    table = "embed_tokens.weight" if llama else "wte.weight"
    decoder_state = {k: v for k, v in model.decoder.state_dict().items() if k != table}
    missing, unexpected = body.load_state_dict(decoder_state, strict=False)
    if unexpected or set(missing) - {table}:
        raise RuntimeError(f"decoder layout differs from {type(hf).__name__}: {missing} {unexpected}")
    with torch.no_grad():
        body.get_input_embeddings().weight.copy_(input_table(model))
        hf.lm_head.weight.copy_(model.lm_head.weight.float().cpu())
    return hf.eval()


def character_tokenizer(vocab: Vocab) -> PreTrainedTokenizerFast:
    """A fast tokenizer that maps every character to its ID (unknown ones to <unk>) and joins them back."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab.tokens)}, unk_token=SPECIALS[UNK_ID]))
    tok.normalizer = normalizers.NFKC()  # the corpus was NFKC-normalised before counting
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one piece per character
    tok.decoder = decoders.Fuse()  # characters join without spaces
    tok.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=SPECIALS[UNK_ID], pad_token=SPECIALS[PAD_ID],
                                   eos_token=SPECIALS[SEP_ID], bos_token=SPECIALS[SEP_ID])


def export_run(run_dir: str | Path, out: str | Path, checkpoint: str = "best", overwrite: bool = False) -> Path:
    """Write `out`: a transformers model + tokenizer folder, with the run's own files in out/hotstart/."""
    from .training.checkpoint import save_weights
    from .training.run import load_run

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise HotStartError(f"{out} is not empty; choose another --out or pass --overwrite")
    run = load_run(run_dir, checkpoint=checkpoint, progress=False)
    hf = to_transformers(run.model)
    hf.save_pretrained(out)
    character_tokenizer(run.corpus.vocab).save_pretrained(out)
    own = out / "hotstart"
    own.mkdir(exist_ok=True)
    for name in ("config.yaml", "vocab.json", "render.json"):
        if (Path(run_dir) / name).is_file():
            shutil.copy2(Path(run_dir) / name, own / name)
    save_weights(run.model, own / f"{checkpoint}.safetensors")  # encoder included, to rebuild the table
    return out


@torch.no_grad()
def generate(model: HotStartLM, vocab: Vocab, prompt: str, max_new: int = 100, temperature: float = 1.0,
             top_k: int | None = None, seed: int | None = None) -> Iterator[str]:
    """Yield one character at a time, sampled from the model after `prompt` (greedy at temperature 0)."""
    if temperature < 0 or (top_k is not None and top_k < 1):
        raise HotStartError("--temperature must be >= 0 and --top-k >= 1")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    model.eval()
    ids = torch.as_tensor(vocab.encode(prompt), dtype=torch.long).reshape(1, -1)
    if ids.shape[1] == 0:
        ids = torch.tensor([[SEP_ID]])  # an empty prompt starts a new document
    window = model.config.decoder.n_positions
    for _ in range(max_new):
        logits, _ = model(ids[:, -window:])
        logits = logits[0, -1].float()
        logits[PAD_ID] = -float("inf")  # never emit padding
        if temperature == 0:
            next_id = int(logits.argmax())
        else:
            if top_k is not None:
                cutoff = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                logits[logits < cutoff] = -float("inf")
            probs = torch.softmax(logits / temperature, dim=-1)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
        yield vocab.decode([next_id])


def stream(pieces: Iterator[str]) -> str:
    """Print pieces as they come (flushing) and return the whole text."""
    text = []
    for piece in pieces:
        print(piece, end="", flush=True)
        text.append(piece)
    print()
    sys.stdout.flush()
    return "".join(text)
