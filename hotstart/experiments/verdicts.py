"""The paper's claims decided from the runs: one verdict per claim by a stated rule, and a plain
summary of what did and did not replicate.

Rules, so that a reader can check every verdict by hand from the report's tables:
- a final-accuracy claim (RQ1, RQ3, RQ4) holds when the model is within 1 pp of its comparison or
  above it, unless both sit on the most-frequent-character plateau, where agreement says nothing;
- the hot start (RQ2) holds at a hot-start point when vision leads index by more than 1 pp and more than
  2 sd over seeds, with a ratio of at least 1.5; the same rule is applied under every ablation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .paper import HOT_POINTS, PAPER_DECODER, PAPER_HOT
from .runs import Run, Selector, acc_stats, final_metrics
from .sweep import RESOLUTIONS, UNPOOLED_40


def _verdict_close(claim: str, a: dict[str, Any] | None, b: dict[str, Any] | None, a_label: str, b_label: str,
                   paper: str, plateau: float | None) -> tuple[str, str, str]:
    """'held' when a's final accuracy is within 1 point of b's (or above it), unless both still sit
    on the most-frequent-character plateau, where any two models agree and the test says nothing."""
    if not a or not b:
        return claim, "not measured", "the final-protocol runs are missing"
    diff = 100 * (a["acc"] - b["acc"])
    verdict = "held" if diff >= -1.0 else "did not hold"
    seeds = min(a.get("n", 1), b.get("n", 1))
    if seeds == 1:  # a one-seed comparison cannot tell a margin of a point from seed noise: say so beside it
        verdict += " (1 seed each)"
    if plateau is not None and max(a["acc"], b["acc"]) <= plateau + 0.01:
        verdict = "not informative (both within 1 pp of the most-frequent-character plateau)"
    return claim, verdict, (f"{a_label} {100 * a['acc']:.2f}% vs {b_label} {100 * b['acc']:.2f}%, {diff:+.2f} pp; "
                            f"rule: within 1 pp or better; paper: {paper}")


def hot_lead(index: list[Run], vision: list[Run]) -> tuple[list[int], list[str]]:
    """The paper's hot-start points where vision leads index by the rule of `_verdict_hot`, and the
    'vision vs index' text of every point both reached."""
    found, shown = [], []
    for samples in HOT_POINTS:
        (i, isd, _, _), (v, vsd, _, _) = acc_stats(index, samples), acc_stats(vision, samples)
        if i is None or v is None:
            continue
        diff, noise = v - i, 2 * max(isd or 0, vsd or 0)
        shown.append(f"{samples:,}: {100 * v:.2f} vs {100 * i:.2f}")
        if diff > max(0.01, noise) and i > 0 and v / i >= 1.5:
            found.append(samples)
    return found, shown


def _hot_conditions(select: Selector, res: int) -> list[tuple[str, list[Run], list[Run]]]:
    """The ablations as conditions on the hot start: (condition, index runs, vision runs) for each
    variant that was run, paired with its own counterpart where one exists, else with the reference."""
    index, vision = select("hot", "index"), select("hot", "vision", res=res)
    present = lambda axis, kind: sorted({r.axes[axis] for r in select.runs
                                         if r.axes["protocol"] == "hot" and r.axes["kind"] == kind}, key=str)
    conditions = [("with the warm-up schedule", select("hot", "index", schedule="warmup"),
                   select("hot", "vision", res=res, schedule="warmup"))]
    conditions += [(f"with the {size} decoder", select("hot", "index", size=size), select("hot", "vision", res=res, size=size))
                   for size in present("size", "index") if size != select.base_size]
    conditions += [(f"against an index embedding of std {std:g}", select("hot", "index", embed_init_std=std), vision)
                    for std in present("embed_init_std", "index") if std != 0.02]
    conditions.append(("with raw-pixel glyphs", index, select("hot", "vision", res=res, pixel_norm="raw")))
    conditions.append(("without the encoder's output LayerNorm", index, select("hot", "vision", res=res, output_norm="none")))
    conditions += [(f"with the {enc} encoder", index, select("hot", "vision", res=res, encoder=enc))
                   for enc in present("encoder", "vision") if enc != "simp"]
    return [(label, i, v) for label, i, v in conditions if i and v]


def _hot_claim(res: int) -> str:
    """The RQ2 claim for vision at `res`, naming the grid a glyph above 8x8 is squeezed to (our simp encoder's
    default layout), so that it is not mistaken for the 40x40 glyph not squeezed (the explain grid's)."""
    squeezed = " squeezed to an 8x8 grid" if res > 8 else ""
    return f"RQ2: hot start, vision {res}x{res}{squeezed} well ahead of index early in training"


def _hot_evidence(index: list[Run], vision: list[Run], paper: str) -> tuple[list[int], str] | None:
    """The rule's points and the evidence text for one index/vision pair; None when no point was reached."""
    found, shown = hot_lead(index, vision)
    if not shown:
        return None
    n = min(len(index), len(vision))
    return found, (f"{'; '.join(shown)} (vision vs index %, mean of {n} seed(s)); rule: ahead by > 1 pp and > 2 sd "
                   f"with ratio >= 1.5 at some point of {', '.join(f'{p:,}' for p in HOT_POINTS)}; paper: {paper}")


def _verdict_hot(select: Selector, res: int, paper: str) -> tuple[str, str, str]:
    """'held' when vision leads index by > 1 pp and > 2 sd at some hot-start point, with ratio >= 1.5;
    'held only ...' when that is true not in the paper's setting but under one of the ablations."""
    claim = _hot_claim(res)
    index, vision = select("hot", "index"), select("hot", "vision", res=res)
    if not index or not vision:
        return claim, "not measured", f"hot-protocol runs of index and vision {res}x{res} are missing"
    if (measured := _hot_evidence(index, vision, paper)) is None:
        return claim, "not measured", f"the hot-protocol runs end before {HOT_POINTS[0]:,} samples"
    found, evidence = measured
    conditions = _hot_conditions(select, res)
    held_under = []
    for label, cond_index, cond_vision in conditions:
        cond_found, _ = hot_lead(cond_index, cond_vision)
        if cond_found:
            held_under.append(f"{label} (at {', '.join(f'{s:,}' for s in cond_found)})")
    if conditions:
        evidence += (f"; the same rule under {len(conditions)} ablation condition(s) ("
                     f"{', '.join(label for label, _, _ in conditions)}): "
                     + (f"held {'; '.join(held_under)}" if held_under else "held under none"))
    if found:
        return claim, "held at " + ", ".join(f"{s:,}" for s in found), evidence
    return claim, ("held only " + "; ".join(held_under)) if held_under else "did not hold", evidence


def _verdict_hot_paper_decoder(select: Selector, paper: str) -> tuple[str, str, str] | None:
    """RQ2 for the 40x40 glyph not squeezed to an 8x8 grid at the paper's decoder, where the sweep's own
    decoder is smaller and such runs exist (the explain grid's); None otherwise, as the row above covers it."""
    if select.base_size == PAPER_DECODER:
        return None
    index = select("hot", "index", size=PAPER_DECODER)
    vision = select("hot", "vision", size=PAPER_DECODER, **UNPOOLED_40)
    if not index or not vision or (measured := _hot_evidence(index, vision, paper)) is None:
        return None
    found, evidence = measured
    claim = f"RQ2 at the paper's decoder ({PAPER_DECODER}): hot start, vision 40x40 not squeezed to an 8x8 grid"
    return claim, ("held at " + ", ".join(f"{s:,}" for s in found)) if found else "did not hold", evidence


def verdict_section(select: Selector, plateau: float | None) -> tuple[str, list[dict[str, Any]]]:
    """One line per claim of the paper, decided by a stated rule from the numbers above."""
    final = lambda **axes: final_metrics(select("final", **axes))
    best_high = max((m for m in (final(kind="vision", res=r) for r in RESOLUTIONS if r > 8) if m),
                    key=lambda m: m["acc"], default=None)
    rows = [
        _verdict_close("RQ1: vision 8x8 reaches the index baseline's final accuracy", final(kind="vision", res=8),
                       final(kind="index"), "vision 8x8", "index", "39.21 vs 39.10", plateau),
        _verdict_hot(select, 8, "12.34 vs 5.84 at 8,200"),
        _verdict_hot(select, 40, "13.06 vs 4.30 at 4,096"),
        *([row] if (row := _verdict_hot_paper_decoder(select, "13.06 vs 4.30 at 4,096")) else []),
        _verdict_close("RQ3: 8x8 is enough (as good as the best higher resolution)", final(kind="vision", res=8),
                       best_high, "8x8", "best of 20/30/80", "39.21 at 8x8 vs 39.16 at 20x20", plateau),
        _verdict_close("RQ4: robust to occlusion (Vision-50% at 8x8 close to Vision-100%)",
                       final(kind="vision", res=8, crop=0.5), final(kind="vision", res=8), "Vision-50%", "Vision-100%",
                       "38.63 vs 39.21", plateau),
    ]
    lines = ["| claim | verdict | evidence |", "|---|---|---|"] + [f"| {c} | **{v}** | {e} |" for c, v, e in rows]
    return "\n".join(lines), [{"claim": c, "verdict": v, "evidence": e} for c, v, e in rows]


# ----------------------------------------------------------------------------- in plain words

_GROUPS = (("did not hold", "Did not replicate"), ("held only", "Replicated only under a condition"),
           ("held", "Replicated"), ("not measured", "Not measured yet"), ("not informative", "Not informative"))


def _largest_lead(index: list[Run], vision: list[Run]) -> tuple[float, int] | None:
    """The largest mean vision-minus-index difference at the paper's hot-start points, and where."""
    leads = []
    for samples in HOT_POINTS:
        i, v = acc_stats(index, samples)[0], acc_stats(vision, samples)[0]
        if i is not None and v is not None:
            leads.append((v - i, samples))
    return max(leads) if leads else None


def _hot_summary(select: Selector, res: int) -> str | None:
    """Where vision came closest to a hot start, over the paper's setting and every ablation condition."""
    conditions = [("in the paper's setting", select("hot", "index"), select("hot", "vision", res=res))]
    conditions += _hot_conditions(select, res)
    leads = [(lead, label) for label, i, v in conditions if i and v and (lead := _largest_lead(i, v))]
    if not leads:
        return None
    (diff, samples), label = max(leads)
    paper = PAPER_HOT[f"vision {res}x{res}"]
    paper_diff, paper_at = max((v - i, s) for v, i, s in zip(paper, PAPER_HOT["index"], HOT_POINTS))
    squeezed = (" squeezed to an 8x8 grid (the 40x40 glyph not squeezed is another model: its row at the paper's "
                "decoder above and \"What the hot start needs\" give its leads)") if res > 8 else ""
    return (f"Vision {res}x{res}{squeezed}, {select.base_size} decoder, against index, over {len(leads)} condition(s): "
            f"the largest mean lead at any of the paper's points was {100 * diff:+.2f} pp ({label}, at {samples:,} "
            f"samples); the paper's was {paper_diff:+.2f} pp at {paper_at:,}.")


def _ablation_effects(select: Selector, groups: list[tuple[str, dict[str, list[Run]]]], samples: int) -> list[str]:
    """Each ablation variant's accuracy at `samples` minus that of its model in the paper's setting,
    largest first (finished runs only)."""
    base = select.paper_setting()
    seen, effects = set(), []
    for _, variants in groups:
        for label, runs in variants.items():
            runs = [r for r in runs if r.summary]
            key = tuple(sorted(r.name for r in runs))
            if not runs or key in seen or any(runs == b for b in base.values()):
                continue
            seen.add(key)
            ref = base[runs[0].axes["kind"]]
            (mean, _, n, _), ref_mean = acc_stats(runs, samples), acc_stats(ref, samples)[0]
            if mean is not None and ref_mean is not None:
                effects.append((100 * (mean - ref_mean), f"{label} ({n} seed{'s' if n > 1 else ''})"))
    effects.sort(key=lambda e: -abs(e[0]))
    return [f"{label} {diff:+.2f} pp" for diff, label in effects]


def tried_candidates(explain_rows: Sequence[dict[str, Any]]) -> int:
    """How many candidate settings of "What the hot start needs" have been run, its reference row aside: the
    count a pass is one of."""
    return sum(r["verdict"] != "not run yet" and not r.get("reference") for r in explain_rows)


def replication_section(select: Selector, verdict_rows: list[dict[str, Any]],
                        ablation_groups: list[tuple[str, dict[str, list[Run]]]],
                        explain_rows: Sequence[dict[str, Any]] = ()) -> str:
    """What did and did not replicate, in plain words, from the verdicts, the ablation tables and the
    rows of "What the hot start needs" (a hot start found there is named here too)."""
    heading_of = lambda verdict: next(h for prefix, h in _GROUPS if verdict.startswith(prefix))  # first match
    lines = []
    for _, heading in _GROUPS:
        rows = [r for r in verdict_rows if heading_of(r["verdict"]) == heading]
        if rows:
            lines.append(f"- **{heading}:**")
            lines += [f"  - {r['claim']}: {r['evidence'].split('; rule')[0]}." for r in rows]
    lines += [f"- {text}" for res in (8, 40) if (text := _hot_summary(select, res))]
    if held := [r for r in explain_rows if r["verdict"].startswith("hot start")]:
        lines.append("- A hot start by the same rule, among the candidate settings of \"What the hot start needs\": "
                     + "; ".join(f"{r['candidate']} ({r['seeds']}: {r['verdict']})"
                                 for r in held) + f"; {len(held)} of {tried_candidates(explain_rows)} candidates "
                     "tried passed.")
    effects = _ablation_effects(select, ablation_groups, 8192)
    if effects:
        lines.append("- What moved accuracy at 8,192 samples, each variant against its model in the paper's setting, "
                     "largest first: " + "; ".join(effects) + ".")
    lines.append(f"- Scale: every run here uses the {select.base_size} decoder unless its label names another; the "
                 "paper's is GPT-2 small, so a claim that did not replicate here may still hold at the paper's scale "
                 "(the decoder-size ablation is the toolkit's test of that).")
    return "\n".join(lines)
