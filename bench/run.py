"""HotStart's speed, measured honestly: one process, variants taking turns, medians of repeats.

    python bench/run.py            # the full benchmark (about 25 minutes on 2 CPU cores)
    python bench/run.py --quick    # the same keys in under 10 minutes
    python bench/run.py --only render   # one of the data benchmarks alone (prepare, bank, render): seconds
    python bench/run.py --only mae      # the masked-autoencoder step against plain transformers alone: minutes
    python bench/run.py --only nextpatch   # PixelGPT's step against plain transformers, and generation: minutes
    python bench/run.py --only anchors  # our line renderer beside the PangoCairo renderers (docs/renderers.md)

Prints a table with each target and, as its last line, one JSON object:
    train_ratio_simp_index / train_ratio_orig_index   training samples/s, vision (8x8) over index
    eval_ratio_vision_index                           evaluation tokens/s, vision over index
    ratio_ours_plain      our training samples/s over a plain transformers GPT2LMHeadModel loop
    ratio_chunked_plain_head  index training samples/s, the step's chunked head loss over the plain one
    train_ratio_mae_plain  our MAE training samples/s (train_step, PixelMAE small-cpu, MaskedPatches loss)
                          over a plain transformers ViTMAEForPreTraining loop, same weights and batches
    train_ratio_nextpatch_plain  our next-patch training samples/s (PixelLM small-cpu, Llama decoder, 32 grey
                          lines of 128 characters) over a plain transformers LlamaModel loop, same weights and batches
    generate_patches_per_s  greedy next-patch generation with a KV cache, small-cpu, one line, fp32
    mfu                   achieved training FLOP/s (index) over this machine's measured matmul peak
    prepare_chars_per_s   `prepare` on the built-in corpus
    bank_render_s_20k     rendering a 20,000-glyph bank at 8x8, no cache
    render_lines_per_s    lines of 529 grey 16x16 patches (free cells, iNews text), warm glyph cache, one core
    render_vs_anchors     (--only anchors) our lines/s over the fastest PangoCairo renderer's (pixel-renderer,
                          pixar-render), 1,000 lines in five scripts, one at a time, one core (bench/anchors.py)
All training variants use the small-cpu decoder (4 x 256), batch 128, 128-character sequences,
the built-in corpus's vocabulary and the precision `auto` picks (or --precision). The MAE pair instead
trains the small-cpu ViTMAE on batches of MAE_LINES (8) lines of 529 patches: the built-in corpus prepared again
with 528-character sequences, one line each, rendered and masked before timing.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from hotstart.data.corpus import read_documents
from hotstart.data.prepared import PrepareConfig, SampleOrder, prepare
from hotstart.experiments.throughput import (
    alternate,
    efficiency_variants,
    median_rate,
    slow_precisions,
    training_flops,
)
from hotstart.models.decoder import decoder_size
from hotstart.models.hotstart_lm import InputConfig, ModelConfig
from hotstart.models.mae import MAEConfig, PixelMAE, mask_noise
from hotstart.models.pixel_lm import PixelLM, PixelLMConfig
from hotstart.render.glyph import GlyphRenderer, RenderConfig
from hotstart.render.line import LineRenderConfig, LineRenderer
from hotstart.training.config import TrainConfig, line_train_defaults
from hotstart.training.evaluate import evaluate
from hotstart.training.loop import cpu_name, make_optimizer, train_step
from hotstart.training.mae_run import MAERunConfig, MaskedPatches
from hotstart.training.next_patch_run import NextPatch, NextPatchRunConfig
from hotstart.training.precision import Precision, resolve
from hotstart.training.run import build_model

TARGETS = {  # key: (target, higher is better)
    "train_ratio_simp_index": (0.97, True),
    "train_ratio_orig_index": (0.90, True),
    "eval_ratio_vision_index": (0.99, True),
    "ratio_ours_plain": (1.0, True),
    "train_ratio_mae_plain": (1.0, True),
    "train_ratio_nextpatch_plain": (1.0, True),
    "generate_patches_per_s": (20.0, True),
    "mfu": (0.25, True),
    "prepare_chars_per_s": (2e6, True),
    "bank_render_s_20k": (5.0, False),
    "render_lines_per_s": (1000.0, True),
    "render_vs_anchors": (1.0, True),
}


def bench_prepare(repeats: int) -> float:
    """Characters per second of `prepare` on the built-in corpus (median of repeats)."""
    rates = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            corpus = prepare(PrepareConfig(corpus="inews"), Path(tmp) / "data", progress=False)
            seconds = time.perf_counter() - start
            rates.append(corpus.meta["raw_chars"] / seconds)
    return statistics.median(rates)


def bench_bank(repeats: int) -> float:
    """Seconds to render 20,000 distinct CJK glyphs at 8x8 into a fresh cache (median of repeats)."""
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 20000)]  # CJK Unified Ideographs, all in Noto Sans CJK
    renderer = GlyphRenderer(RenderConfig(res=8))
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            renderer.render_bank(chars, specials=[], progress=False, cache_dir=tmp)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_lines(repeats: int) -> tuple[float, float]:
    """Lines per second of the line renderer on iNews text: lines that fill all 529 patches, in
    batches of 64 with the glyph cache warm (median of repeats); and the seconds of the first, cold
    batch, which draws every new character once."""
    text = "".join("".join(doc.text.split()) for doc in read_documents("inews"))  # whitespace (line breaks) out
    renderer = LineRenderer(LineRenderConfig(patch=16, mode="grey", cell="free", max_patches=529))
    per_line = 800  # iNews characters per line: more than 528 patches hold unless the line is mostly Latin
    lines = [text[i : i + per_line] for i in range(0, 64 * 45 * per_line, per_line)]
    start = time.perf_counter()
    renderer.render_batch(lines[:64])
    cold_s = time.perf_counter() - start
    full = [line for i in range(0, len(lines), 64)  # warm: every character of the timed lines drawn once
            for line, n in zip(lines[i : i + 64], renderer.render_batch(lines[i : i + 64]).lengths) if n == 529]
    batches = [full[i : i + 64] for i in range(0, len(full) - 63, 64)]
    rates = []
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        for batch in batches:
            renderer.render_batch(batch)
        rates.append(64 * len(batches) / (time.perf_counter() - start))
    return statistics.median(rates), cold_s


def plain_step(vocab_size: int, batches: list[torch.Tensor], prec: Precision):
    """A plain transformers training loop: GPT2LMHeadModel, default AdamW, labels = inputs."""
    from transformers import GPT2Config, GPT2LMHeadModel

    d = decoder_size("small-cpu")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=d.n_positions, n_embd=d.n_embd, n_layer=d.n_layer,
                     n_head=d.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
                     bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(cfg).to(prec.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def step(i: int) -> None:
        ids = batches[i % len(batches)][:, :-1]  # the same 127 positions our model reads
        with prec.autocast():
            loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


class PlainHead(torch.nn.Module):
    """The model with the plain head in training too (all logits, then F.cross_entropy): what the
    chunked head loss of the training step replaced, kept here to measure the difference."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, targets: torch.Tensor, return_logits: bool = True):
        return self.model(ids, targets, return_logits=True)


def ours_step(inp: InputConfig, corpus, batches: list[torch.Tensor], prec: Precision, compile_decoder: bool = False,
              plain_head: bool = False):
    """Our training step (the loop's own train_step) for one input path; also returns the model."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=len(corpus.vocab), input=inp, decoder=decoder_size("small-cpu")),
                        corpus.vocab, progress=False).to(prec.device)
    if compile_decoder:
        model.decoder.compile()
    optimizer, scaler = make_optimizer(model, TrainConfig()), prec.grad_scaler()
    stepped = PlainHead(model) if plain_head else model
    return (lambda i: train_step(stepped, batches[i % len(batches)], optimizer, scaler, prec, 1.0)), model


MAE_LINES = 8
"""Lines per timed MAE step: an mae run's default batch is 32, but a step of 32 lines of the small-cpu
ViTMAE takes ~9 s on 2 cores, and what the ratio measures (the step around the model) does not need it."""


def mae_steps(prec: Precision, n_batches: int = 3) -> tuple[dict, int]:
    """Our MAE training step and a plain transformers ViTMAE loop, from the same initial weights, on
    the same few batches (rendered and masked here, untimed); also returns the lines per batch."""
    cfg = MAERunConfig(data="", model=MAEConfig(size="small-cpu"), train=line_train_defaults())
    cfg.train.batch_size = MAE_LINES
    with tempfile.TemporaryDirectory() as tmp:  # a line is one sequence: 528 characters fill 529 patches
        corpus = prepare(PrepareConfig(corpus="inews", seq_len=528, val_sequences=cfg.train.eval_sequences),
                         Path(tmp) / "data", progress=False)
        cfg.data = str(corpus.path)
        objective = MaskedPatches(cfg, corpus)
        objective.check()
        order = SampleOrder(corpus.train_index, seed=0, batch_size=cfg.train.batch_size)
        batches = [tuple(t.to(prec.device) for t in objective.batch(order.batch(i)[0], i)) for i in range(n_batches)]
    torch.manual_seed(0)
    ours = PixelMAE(cfg.model).to(prec.device)
    optimizer, scaler = make_optimizer(ours, cfg.train), prec.grad_scaler()
    plain = transformers.ViTMAEForPreTraining(cfg.model.vit_config()).to(prec.device)
    plain.load_state_dict(ours.mae.state_dict())
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=cfg.train.lr_max)
    # the plain loop gets ViTMAE's own inputs ready-made, so only the step itself is compared
    with torch.no_grad():
        plain_inputs = [(ours.to_image(patches), mask_noise(mask)) for patches, mask in batches]

    def plain_step(i: int) -> None:
        """As the LM's plain_step: forward, backward, default AdamW; no clipping, no scaler."""
        image, noise = plain_inputs[i % n_batches]
        with prec.autocast():
            loss = plain(pixel_values=image, noise=noise).loss
        plain_opt.zero_grad(set_to_none=True)
        loss.backward()
        plain_opt.step()

    ours_step = lambda i: train_step(ours, batches[i % n_batches], optimizer, scaler, prec, cfg.train.grad_clip,
                                     loss_fn=objective.loss)
    return {"mae (ours)": ours_step, "mae plain transformers": plain_step}, cfg.train.batch_size


def bench_mae(prec: Precision, rounds: int, warmup: int) -> dict[str, float]:
    """Samples/s (lines) of our MAE step and of the plain ViTMAE loop, taking turns (median of rounds)."""
    steps, lines = mae_steps(prec)
    return {name: median_rate(secs, lines) for name, secs in alternate(steps, rounds, per_round=2, warmup=warmup).items()}


NEXT_PATCH_LINES = 32
"""Lines per timed next-patch step: a next-patch run's default batch (128-character sequences, one line each)."""


def next_patch_steps(prec: Precision, n_batches: int = 3) -> tuple[dict, int]:
    """Our next-patch training step (PixelLM small-cpu, Llama decoder, grey 16x16 lines) and a plain
    transformers LlamaModel loop with the same patch embedding, head, weights and batches (rendered
    here, untimed); also returns the lines per batch."""
    cfg = NextPatchRunConfig(data="", model=PixelLMConfig(size="small-cpu"), train=line_train_defaults())
    cfg.train.batch_size = NEXT_PATCH_LINES
    with tempfile.TemporaryDirectory() as tmp:
        corpus = prepare(PrepareConfig(corpus="inews", seq_len=128, val_sequences=cfg.train.eval_sequences),
                         Path(tmp) / "data", progress=False)
        cfg.data = str(corpus.path)
        objective = NextPatch(cfg, corpus)
        objective.check()
        order = SampleOrder(corpus.train_index, seed=0, batch_size=cfg.train.batch_size)
        batches = [tuple(t.to(prec.device) for t in objective.batch(order.batch(i)[0], i)) for i in range(n_batches)]
    torch.manual_seed(0)
    ours = PixelLM(cfg.model).to(prec.device)
    optimizer, scaler = make_optimizer(ours, cfg.train), prec.grad_scaler()
    plain = torch.nn.ModuleDict({"embed": torch.nn.Linear(ours.patch_embed.in_features, ours.patch_embed.out_features),
                                 "decoder": transformers.LlamaModel(ours.decoder.config),
                                 "head": torch.nn.Linear(ours.head.in_features, ours.head.out_features)}).to(prec.device)
    plain["embed"].load_state_dict(ours.patch_embed.state_dict())
    plain["decoder"].load_state_dict(ours.decoder.state_dict())
    plain["head"].load_state_dict(ours.head.state_dict())
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=cfg.train.lr_max)
    plain_inputs = [patches.flatten(2) for patches, _ in batches]  # (B, N, P*P): a position per patch
    start = ours.wpe_start.detach().clone()

    def plain_step(i: int) -> None:
        """As the LM's plain_step: forward, backward, default AdamW; no clipping, no scaler, no mask."""
        positions = plain_inputs[i % n_batches]
        with prec.autocast():
            x = torch.cat([start.expand(len(positions), 1, -1), plain["embed"](positions[:, :-1])], dim=1)
            out = plain["head"](plain["decoder"](inputs_embeds=x).last_hidden_state)
            loss = torch.nn.functional.mse_loss(out.float(), positions)
        plain_opt.zero_grad(set_to_none=True)
        loss.backward()
        plain_opt.step()

    ours_step = lambda i: train_step(ours, batches[i % n_batches], optimizer, scaler, prec, cfg.train.grad_clip,
                                     loss_fn=objective.loss)
    return {"next-patch (ours)": ours_step, "next-patch plain transformers": plain_step}, cfg.train.batch_size


def bench_next_patch(prec: Precision, rounds: int, warmup: int) -> dict[str, float]:
    """Samples/s (lines) of our next-patch step and of the plain Llama loop, taking turns (median of rounds)."""
    steps, lines = next_patch_steps(prec)
    return {name: median_rate(secs, lines) for name, secs in alternate(steps, rounds, per_round=2, warmup=warmup).items()}


GENERATED_PATCHES = 64
"""Patches generated per timed generation, after a prompt of 16 (one line, batch 1)."""


def bench_generate(rounds: int) -> float:
    """Patches/s of greedy generation with the KV cache, small-cpu PixelGPT, fp32 as `hotstart generate` runs."""
    torch.manual_seed(0)
    model = PixelLM(PixelLMConfig(size="small-cpu")).eval()
    prompt = torch.from_numpy(LineRenderer(model.config.line).render("新华社北京十二月一日电,今天的天气很好")[None, :16])
    model.generate(prompt, 4)  # warm-up
    times = []
    for _ in range(rounds):
        begin = time.perf_counter()
        model.generate(prompt, GENERATED_PATCHES)
        times.append(time.perf_counter() - begin)
    return GENERATED_PATCHES / statistics.median(times)


def matmul_peak(prec: Precision, repeats: int) -> float:
    """The best median FLOP/s of square matmuls in this precision (the MFU denominator)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(prec.name, torch.float32)
    best = 0.0
    for n in (1024, 2048, 4096):
        a, b = (torch.randn(n, n, device=prec.device, dtype=dtype) for _ in range(2))
        a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            (a @ b).sum().item()
            times.append(time.perf_counter() - start)
        best = max(best, 2 * n**3 / statistics.median(times))
    return best


def evaluate_step(model, val: torch.Tensor, prec: Precision, call: int) -> None:
    """One evaluation pass (the `evaluate` that training uses) over the benchmark's sequences."""
    evaluate(model, val, prec)


def compare_precisions(corpus, batches: list[torch.Tensor], prec: Precision, rounds: int) -> dict[str, dict[str, float]]:
    """CPU: the index step in fp32 and in bf16 autocast, taking turns, each with its own matmul peak and MFU. One
    step of each is timed first; a precision far slower than the other (slow_precisions) keeps that one step's
    rate and ratio, without rounds or a matmul peak, so that the comparison ends on every CPU."""
    steps, flops, first = {}, {}, {}
    for name in ("fp32", "bf16"):
        p = Precision(name, prec.device)
        steps[name], model = ours_step(efficiency_variants()["index"], corpus, batches, p)
        flops[name] = training_flops(model, batches[0], p)[1]
        start = time.perf_counter()
        steps[name](0)
        first[name] = time.perf_counter() - start
    slow = slow_precisions(first)
    seconds = alternate({name: step for name, step in steps.items() if name not in slow}, rounds=rounds, per_round=2)
    rows = {}
    for name, secs in seconds.items():
        rate, peak = median_rate(secs, 128), matmul_peak(Precision(name, prec.device), repeats=3)
        rows[name] = {"samples_per_s": rate, "mfu": flops[name] * rate / 128 / peak, "peak": peak}
    for name in slow:
        rows[name] = {"samples_per_s": 128 / first[name], "one_step_ratio": first[name] / min(first.values())}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats: the same keys in under 10 minutes")
    parser.add_argument("--precision", default="auto", help="auto (default) | bf16 | fp32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile comparison")
    parser.add_argument("--profile", action="store_true", help="also print where a step's time goes (index, vision-orig)")
    parser.add_argument("--only", choices=("prepare", "bank", "render", "mae", "nextpatch", "anchors"), help="run one benchmark alone")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()  # the plain model's config notices are not results
    rounds, repeats = (5, 1) if args.quick else (11, 3)
    if args.only:
        run_only(args, rounds, repeats)
        return
    started = time.perf_counter()
    prec = resolve(args.device, args.precision)
    sections = [time.perf_counter()]

    def log(msg: str) -> None:  # each section's start, and how long the one before it took
        now = time.perf_counter()
        took = f" (previous section {now - sections[-1]:.0f} s)" if len(sections) > 1 else ""
        sections.append(now)
        print(f"[{now - started:6.0f} s] {msg}{took}", file=sys.stderr, flush=True)

    log("prepare on the built-in corpus")
    prepare_rate = bench_prepare(repeats)
    log("glyph bank of 20,000 characters")
    bank_s = bench_bank(repeats)
    log("line rendering")
    lines_rate, lines_cold_s = bench_lines(repeats)

    with tempfile.TemporaryDirectory() as tmp:
        corpus = prepare(PrepareConfig(corpus="inews"), Path(tmp) / "data", progress=False)
    order = SampleOrder(corpus.train_index, seed=0, batch_size=128)
    batches = [corpus.sequences(order.batch(i)[0]).to(prec.device) for i in range(4)]
    variants = efficiency_variants()
    steps, models = {}, {}
    for name in ("index", "vision-simp", "vision-orig"):
        steps[name], models[name] = ours_step(variants[name], corpus, batches, prec)
    steps["plain transformers"] = plain_step(len(corpus.vocab), batches, prec)
    steps["index, plain head loss"], _ = ours_step(variants["index"], corpus, batches, prec, plain_head=True)
    log("FLOPs of a training step and the matmul peak")
    _, flops_index = training_flops(models["index"], batches[0], prec)
    _, flops_simp = training_flops(models["vision-simp"], batches[0], prec)
    _, flops_orig = training_flops(models["vision-orig"], batches[0], prec)
    peak = matmul_peak(prec, repeats=5)
    if not args.no_compile:
        compiled = ("index",) if args.quick else ("index", "vision-simp")
        log(f"compiling the decoder ({', '.join(compiled)})")
        for name in compiled:
            steps[f"{name} +compile"], _ = ours_step(variants[name], corpus, batches, prec, compile_decoder=True)
    log(f"training steps: {len(steps)} variants x {rounds} rounds, taking turns")
    train_s = alternate(steps, rounds=rounds, per_round=2, warmup=2 if not args.quick else 1)
    train_rate = {name: median_rate(secs, 128) for name, secs in train_s.items()}

    log("evaluation: index vs vision-simp, taking turns")
    val = corpus.sequences(corpus.val_index[: 256 if args.quick else 512])
    tokens = val.shape[0] * (val.shape[1] - 1)
    eval_s = alternate({name: functools.partial(evaluate_step, models[name], val, prec) for name in ("index", "vision-simp")},
                       rounds=2 * rounds - 1, per_round=1)  # one evaluation is short and noisy: more rounds
    eval_rate = {name: median_rate(secs, tokens) for name, secs in eval_s.items()}

    if prec.device.type == "cpu":
        log("precision: the index step in fp32 and in bf16, taking turns")
    achieved = flops_index * train_rate["index"] / 128
    precisions = compare_precisions(corpus, batches, prec, rounds) if prec.device.type == "cpu" else {}
    log("MAE training: ours vs plain transformers ViTMAE, taking turns")
    mae_rate = bench_mae(prec, rounds, warmup=1 if args.quick else 2)
    train_rate.update({f"{name} ({MAE_LINES} lines of 529 patches)": rate for name, rate in mae_rate.items()})
    log("next-patch training: ours vs plain transformers Llama, taking turns; generation")
    next_patch_rate = bench_next_patch(prec, rounds, warmup=1 if args.quick else 2)
    train_rate.update({f"{name} ({NEXT_PATCH_LINES} lines)": rate for name, rate in next_patch_rate.items()})
    generate_rate = bench_generate(rounds)
    log("done")
    result = {
        "train_ratio_simp_index": train_rate["vision-simp"] / train_rate["index"],
        "train_ratio_orig_index": train_rate["vision-orig"] / train_rate["index"],
        "eval_ratio_vision_index": eval_rate["vision-simp"] / eval_rate["index"],
        "ratio_ours_plain": train_rate["index"] / train_rate["plain transformers"],
        "ratio_chunked_plain_head": train_rate["index"] / train_rate["index, plain head loss"],
        "train_ratio_mae_plain": mae_rate["mae (ours)"] / mae_rate["mae plain transformers"],
        "train_ratio_nextpatch_plain": next_patch_rate["next-patch (ours)"] / next_patch_rate["next-patch plain transformers"],
        "generate_patches_per_s": generate_rate,
        "mfu": achieved / peak,
        "prepare_chars_per_s": prepare_rate,
        "bank_render_s_20k": bank_s,
        "render_lines_per_s": lines_rate,
        "render_first_batch_s": lines_cold_s,
    }
    for name, row in precisions.items():
        result[f"train_samples_per_s_{name}"] = row["samples_per_s"]
        if "mfu" in row:
            result[f"mfu_{name}"] = row["mfu"]
            result[f"matmul_peak_gflops_{name}"] = row["peak"] / 1e9
        else:  # far slower: timed by one step (compare_precisions)
            result[f"slower_one_step_{name}"] = row["one_step_ratio"]
    print_table(args, prec, train_rate, eval_rate, flops_index, flops_simp, flops_orig, peak, achieved, result,
                time.perf_counter() - started)
    if args.profile:
        print_profile({name: steps[name] for name in ("index", "vision-orig")})
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))


def run_only(args, rounds: int, repeats: int) -> None:
    """One benchmark on its own: the command, the machine, and its keys as one JSON line."""
    if args.only == "mae":  # a training step: every thread and the chosen precision, as in the full run
        prec = resolve(args.device, args.precision)
        rate = bench_mae(prec, rounds, warmup=1 if args.quick else 2)
        result = {"train_ratio_mae_plain": rate["mae (ours)"] / rate["mae plain transformers"]}
        notes = [f"{name}: {r:.1f} lines/s, {MAE_LINES / r:.2f} s per step (median)"
                 for name, r in rate.items()]
        machine = f"{torch.get_num_threads()} threads, device {prec.device}, precision {prec.describe()}"
    elif args.only == "anchors":  # each renderer in a fresh process of its own, on one core
        import anchors

        result, notes = anchors.compare(repeats)
        machine = "1 core"
    elif args.only == "nextpatch":
        prec = resolve(args.device, args.precision)
        rate = bench_next_patch(prec, rounds, warmup=1 if args.quick else 2)
        result = {"train_ratio_nextpatch_plain": rate["next-patch (ours)"] / rate["next-patch plain transformers"],
                  "generate_patches_per_s": bench_generate(rounds)}
        notes = [f"{name}: {r:.1f} lines/s, {NEXT_PATCH_LINES / r:.2f} s per step (median)" for name, r in rate.items()]
        machine = f"{torch.get_num_threads()} threads, device {prec.device}, precision {prec.describe()}"
    else:
        torch.set_num_threads(1)  # these run on one core (numpy and Pillow are single-threaded here anyway)
        result = {"prepare": lambda: {"prepare_chars_per_s": bench_prepare(repeats)},
                  "bank": lambda: {"bank_render_s_20k": bench_bank(repeats)},
                  "render": lambda: dict(zip(("render_lines_per_s", "render_first_batch_s"),
                                             bench_lines(repeats)))}[args.only]()
        machine, notes = "1 core", []
    print(" ".join(["python bench/run.py", *sys.argv[1:]]))
    print(f"{cpu_name()}, {machine}, python {platform.python_version()}, numpy {np.__version__}")
    for note in notes:
        print(note)
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))


def print_profile(steps: dict) -> None:
    """Where one training step's time goes, per variant: torch's profiler, the ten costliest operators."""
    from torch.profiler import profile

    for name, step in steps.items():
        with profile() as prof:
            step(10_000)
        print(f"\nprofile of one {name} training step (self CPU time):\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def print_table(args, prec, train_rate, eval_rate, flops_index, flops_simp, flops_orig, peak, achieved, result, seconds) -> None:
    """The human-readable report: environment, every variant's rate, every key against its target."""
    print(" ".join(["python bench/run.py", *sys.argv[1:]]))
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads, device {prec.device}, "
          f"precision {prec.describe()}; small-cpu decoder, batch 128 x 128; "
          f"{seconds:.0f} s in all\n")
    print("| training variant | samples/s (median) |\n|---|---:|")
    for name, rate in train_rate.items():
        print(f"| {name} | {rate:.1f} |")
    print("\n| evaluation | tokens/s (median) |\n|---|---:|")
    for name, rate in eval_rate.items():
        print(f"| {name} | {rate:,.0f} |")
    print(f"\ntraining FLOPs per step: index {flops_index / 1e9:.0f} G, vision-simp {flops_simp / 1e9:.0f} G, "
          f"vision-orig {flops_orig / 1e9:.0f} G (at equal FLOP/s, orig/index could reach at most "
          f"{flops_index / flops_orig:.3f}); "
          f"achieved {achieved / 1e9:.1f} GFLOP/s (index) against a measured {prec.name} matmul peak of {peak / 1e9:.1f} GFLOP/s\n")
    print("| key | value | target | met |\n|---|---:|---:|---|")
    for key, value in result.items():
        if key not in TARGETS:
            print(f"| {key} | {value:,.3f} | | |")
            continue
        target, higher = TARGETS[key]
        met = value >= target if higher else value <= target
        shown = f"{value:,.0f}" if value > 1000 else f"{value:.3f}"
        print(f"| {key} | {shown} | {'>=' if higher else '<'} {target:g} | {'yes' if met else 'no'} |")


if __name__ == "__main__":
    main()
