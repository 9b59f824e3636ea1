"""The paper's published numbers, which every report prints beside ours.

Copied from the tables of *Hot-Start from Pixels: Low-Resolution Visual Tokens for Chinese Language
Modeling* (ACL 2026, arXiv 2601.09566): the main and hot-start tables are on THUCNews with a GPT-2
small decoder; the efficiency table is the paper's zhwp run on an RTX 5090 laptop GPU.
"""

from __future__ import annotations

RESOLUTIONS = (4, 8, 20, 30, 80)  # the paper's RQ3 table
PAPER_DECODER = "gpt2-small"  # the decoder of every run in the paper (models/decoder.py DECODER_SIZES)
# The paper's tables. PAPER_MAIN[(crop, res)] = (accuracy %, perplexity); crop None = the index row.
PAPER_MAIN: dict[tuple[float | None, int | None], tuple[float, float]] = {
    **dict(zip([(1.0, r) for r in RESOLUTIONS], [(29.70, 85.33), (39.21, 46.59), (39.16, 45.83), (39.14, 48.73), (39.03, 49.41)])),
    **dict(zip([(0.8, r) for r in RESOLUTIONS], [(18.28, 195), (39.18, 46.23), (39.15, 46.33), (39.07, 48.83), (39.08, 48.74)])),
    **dict(zip([(0.5, r) for r in RESOLUTIONS], [(2.10, 2249), (38.63, 47.95), (38.70, 48.04), (38.66, 49.81), (38.57, 50.33)])),
    (None, None): (39.10, 47.58),
}
HOT_POINTS = (4096, 6152, 8200, 10248)  # the paper's hot-start table rows (samples)
PAPER_HOT = {"index": (4.30, 4.61, 5.84, 8.45), "vision 8x8": (4.19, 5.57, 12.34, 13.94),
             "vision 40x40": (13.06, 14.7, 15.46, 15.92)}
# config: (params, forward GFLOPs per sample, samples/s, Acc@8k %, final acc %)
PAPER_EFFICIENCY = {"index": ("18.97M", "26.30G", 347.3, 5.30, 39.10),
                    "vision-orig": ("26.45M", "30.61G", 314.3, 8.88, 39.21),
                    "vision-opt": ("22.32M", "29.56G", 306.9, 8.75, 39.18),
                    "vision-simp": ("12.61M", "28.14G", 323.4, 6.97, 39.19)}
# Where the other systems' papers say their method works, in patches seen (shared/papers/*.md); a 16 px Chinese
# character takes about one patch, so the data-efficiency plots put these beside characters seen.
PAPER_SCALES = {
    "mae": {"PIXEL-M4 pretrains 1M steps x 256 lines x 529 patches": 1_000_000 * 256 * 529},
    "writers": {"PixelGPT overtakes PIXEL at about 200B patches": 200e9},
}
