"""Export to plain transformers (same logits, loads without hotstart) and streaming generation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import assert_export_gives_our_logits, train_tiny_vision_run

from hotstart.cli import main
from hotstart.data.prepared import PAD_ID, UNK_ID, PreparedCorpus
from hotstart.training.run import LoadedRun, load_run
from hotstart.use.export import export_run
from hotstart.use.generate import generate


@pytest.fixture(scope="module")
def vision_run(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_vision_run(tiny_corpus, tmp_path_factory.mktemp("export") / "run", "--encoder", "orig")


def test_exported_model_gives_our_logits(vision_run: Path, tmp_path: Path) -> None:
    export_run(vision_run, tmp_path / "hf")
    assert_export_gives_our_logits(vision_run, tmp_path / "hf")
    assert (tmp_path / "hf" / "hotstart" / "render.json").is_file()


@pytest.mark.subprocess
def test_exported_folder_loads_and_generates_in_a_process_without_hotstart(vision_run: Path, tmp_path: Path) -> None:
    export_run(vision_run, tmp_path / "hf")
    script = textwrap.dedent(f"""
        import sys
        from transformers import pipeline
        generate = pipeline("text-generation", model={str(tmp_path / 'hf')!r})
        out = generate("新闻", max_new_tokens=8, do_sample=False)[0]["generated_text"]
        assert out.startswith("新闻") and len(out) > 2, out
        assert not any(name.startswith("hotstart") for name in sys.modules), "hotstart was imported"
        print("OK", out)
    """)
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # never the network
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False,
                            cwd=tmp_path, env=offline)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-2000:]


@pytest.fixture()
def lively_run(vision_run: Path) -> LoadedRun:
    """The run with every weight redrawn from N(0, 0.2): its next-token choice changes with the
    context. (The tiny trained run predicts one token everywhere, which would hide a generation step
    that reads the wrong position or drops a token from its context.)"""
    run = load_run(vision_run, progress=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in run.model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=generator))
    return run


def _generated_and_logits(run: LoadedRun, prompt: str, pieces: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The IDs of the generated `pieces` and, from one forward pass over prompt + pieces (no
    generation loop), the logits that predict each of them, with padding (never generated) masked."""
    vocab = run.corpus.vocab
    token_id = {token: i for i, token in enumerate(vocab.tokens)}
    assert all(piece in token_id for piece in pieces), pieces  # each piece is exactly one token
    ids = vocab.encode(prompt).tolist() + [token_id[piece] for piece in pieces]
    run.model.eval()
    with torch.no_grad():
        logits, _ = run.model(torch.tensor([ids[:-1]]))
    logits = logits[0, len(prompt) - 1:].float()  # row k predicts the k-th generated piece
    logits[:, PAD_ID] = -float("inf")
    return torch.tensor(ids[len(prompt):]), logits


def test_greedy_generation_takes_the_most_likely_token_at_every_step(lively_run: LoadedRun) -> None:
    vocab = lively_run.corpus.vocab
    assert UNK_ID not in vocab.encode("新闻").tolist()  # a prompt the model knows
    pieces = list(generate(lively_run.model, vocab, "新闻", max_new=10, temperature=0))
    assert len(pieces) == 10 and len(set(pieces)) >= 3, pieces  # one token a step, and the context matters
    generated, logits = _generated_and_logits(lively_run, "新闻", pieces)
    chosen = logits.gather(1, generated[:, None])[:, 0]
    # the most likely token (up to float rounding between a growing context and one pass over it all)
    assert torch.all(chosen >= logits.max(dim=-1).values - 1e-5), (pieces, logits.argmax(dim=-1))


def test_seeded_sampling_is_reproducible_and_stays_within_the_top_k(lively_run: LoadedRun) -> None:
    vocab = lively_run.corpus.vocab
    samples = [list(generate(lively_run.model, vocab, "新闻", max_new=10, top_k=5, seed=seed)) for seed in (1, 1, 2)]
    assert samples[0] == samples[1] and len(samples[0]) == 10
    assert samples[0] != samples[2]  # the seed decides the sample
    for pieces in samples:
        generated, logits = _generated_and_logits(lively_run, "新闻", pieces)
        fifth = logits.topk(5, dim=-1).values[:, -1]
        assert torch.all(logits.gather(1, generated[:, None])[:, 0] >= fifth - 1e-5), pieces


def test_generate_command_streams_the_prompt_and_the_greedy_continuation(vision_run: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", str(vision_run), "--prompt", "中国", "--max-new", "5", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    run = load_run(vision_run, progress=False)
    continuation = "".join(generate(run.model, run.corpus.vocab, "中国", max_new=5, temperature=0))
    assert out == "中国" + continuation + "\n"


# ----------------------------------------------------------------------------- every family, out to transformers

FAMILY_CHECK = textwrap.dedent("""
    import sys, torch
    from safetensors.torch import load_file
    from transformers import AutoModel, BertForMaskedLM, ViTMAEForPreTraining

    case = torch.load(sys.argv[1])
    out = {}
    for kind, folder in case["folders"].items():
        given = case["inputs"][kind]
        if kind == "mae":
            model = ViTMAEForPreTraining.from_pretrained(folder).eval()
            with torch.no_grad():
                out[kind] = model(pixel_values=given["pixel_values"], noise=given["noise"]).logits
        elif kind == "mlm":
            model = BertForMaskedLM.from_pretrained(folder).eval()
            with torch.no_grad():
                out[kind] = model(input_ids=given["ids"], attention_mask=(given["ids"] != 0).long()).logits
        else:  # a pixel LM: the decoder, and around it the start vector, patch embedding and head
            decoder, parts = AutoModel.from_pretrained(folder).eval(), load_file(folder + "/pixel_lm.safetensors")
            positions = given["positions"]
            x = positions[:, :-1] @ parts["patch_embed.weight"].T + parts["patch_embed.bias"]
            x = torch.cat([parts["start"].expand(x.shape[0], 1, -1), x], dim=1)
            with torch.no_grad():
                h = decoder(inputs_embeds=x).last_hidden_state
            out[kind] = h @ parts["head.weight"].T + parts["head.bias"]
            if "lm_head.weight" in parts:  # DualGPT's text path through the same decoder
                with torch.no_grad():
                    t = decoder(inputs_embeds=parts["wte.weight"][given["ids"]]).last_hidden_state
                out[kind + "-text"] = t @ parts["lm_head.weight"].T
    assert not any(name.startswith("hotstart") for name in sys.modules), "hotstart was imported"
    torch.save(out, sys.argv[2])
""")


@pytest.fixture(scope="module")
def family_runs(tiny_corpus: PreparedCorpus, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny run of every kind besides next-char, a few steps each."""
    tmp = tmp_path_factory.mktemp("family-export")
    common = ["--data", str(tiny_corpus.path), "--size", "tiny", "--batch-size", "8", "--max-samples", "16",
              "--eval-every", "16", "--dense-until", "16", "--eval-sequences", "8", "--precision", "fp32",
              "--device", "cpu", "--quiet"]
    pixel = ["--max-patches", "40", "--cell", "char"]
    kinds = {"mae": ["--objective", "mae", "--max-patches", "49"], "mlm": ["--objective", "mlm"],
             "next-patch": ["--objective", "next-patch", *pixel], "pixar": ["--objective", "pixar", *pixel],
             "dual": ["--objective", "dual", *pixel, "--patch", "8"]}
    for kind, options in kinds.items():
        assert main(["train", *options, *common, "--out", str(tmp / kind)]) == 0, kind
    return {kind: tmp / kind for kind in kinds}


@pytest.mark.subprocess
def test_every_family_exports_to_transformers_and_matches_our_outputs_in_a_process_without_hotstart(
        family_runs: dict[str, Path], tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    from hotstart.config import from_dict, load_yaml
    from hotstart.models.char_bert import CharBert
    from hotstart.models.dual_lm import DualLM
    from hotstart.models.mae import PixelMAE, grid_image, mask_noise
    from hotstart.render.line import LineRenderer
    from hotstart.training.checkpoint import load_weights
    from hotstart.training.dual_run import DualRunConfig
    from hotstart.training.mae_run import MAERunConfig
    from hotstart.training.mlm_run import MLMRunConfig
    from hotstart.use.generate import load_pixel_run

    torch.manual_seed(0)
    ids = tiny_corpus.sequences(tiny_corpus.val_index[:3])
    folders, inputs, ours = {}, {}, {}
    for kind, run in family_runs.items():
        folders[kind] = str(export_run(run, tmp_path / kind))
        assert (tmp_path / kind / "README.md").read_text().startswith("# ")
    # the MAE: validation lines laid on its grid, a quarter of their patches masked
    cfg = from_dict(MAERunConfig, load_yaml(family_runs["mae"] / "config.yaml"))
    mae = PixelMAE(cfg.model)
    load_weights(mae, family_runs["mae"] / "checkpoints" / "best.safetensors")
    lines = torch.from_numpy(LineRenderer(cfg.model.line).render_batch([tiny_corpus.vocab.decode(r) for r in ids]).patches)
    mask = torch.zeros(lines.shape[:2], dtype=torch.bool)
    mask[:, 1:40:4] = True
    inputs["mae"] = {"pixel_values": grid_image(lines, cfg.model), "noise": mask_noise(mask)}
    with torch.no_grad():
        ours["mae"] = mae.eval().mae(**inputs["mae"]).logits
    # the character BERT: every position's logits, a few characters masked
    bert = CharBert(from_dict(MLMRunConfig, load_yaml(family_runs["mlm"] / "config.yaml")).model)
    load_weights(bert, family_runs["mlm"] / "checkpoints" / "best.safetensors")
    masked = ids.clone()
    masked[:, 3::5] = bert.config.mask_id
    inputs["mlm"] = {"ids": masked}
    with torch.no_grad():
        ours["mlm"] = bert.eval().bert(input_ids=masked, attention_mask=(masked != PAD_ID).long()).logits
    # the pixel LMs: next-patch predictions on validation lines
    for kind in ("next-patch", "pixar", "dual"):
        loaded = load_pixel_run(family_runs[kind])
        drawn = loaded.renderer.render_batch([tiny_corpus.vocab.decode(r) for r in ids])
        positions = loaded.model.group(torch.from_numpy(drawn.patches))
        inputs[kind] = {"positions": positions, "ids": ids}
        with torch.no_grad():
            ours[kind] = loaded.model.predict(positions)
    dual = DualLM(from_dict(DualRunConfig, load_yaml(family_runs["dual"] / "config.yaml")).model)
    load_weights(dual, family_runs["dual"] / "checkpoints" / "best.safetensors")
    with torch.no_grad():
        full = dual.eval().pixel.decoder(inputs_embeds=dual.wte(ids)).last_hidden_state
        ours["dual-text"] = dual.lm_head(full)
    torch.save({"folders": folders, "inputs": inputs}, tmp_path / "case.pt")
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", FAMILY_CHECK, str(tmp_path / "case.pt"), str(tmp_path / "theirs.pt")],
                            capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path, env=offline)
    assert result.returncode == 0, result.stderr[-3000:]
    theirs = torch.load(tmp_path / "theirs.pt")
    assert set(theirs) == set(ours)
    for kind, expected in ours.items():
        assert torch.allclose(theirs[kind], expected.float(), atol=1e-5), (kind, (theirs[kind] - expected).abs().max())
