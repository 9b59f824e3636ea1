"""The measuring tools the benchmark and the efficiency grid share."""

from __future__ import annotations

import functools

import torch

from hotstart.experiments.throughput import alternate, count_flops, median_rate


def test_alternate_times_every_variant_once_per_round_after_warmup() -> None:
    calls: list[tuple[str, int]] = []
    steps = {name: functools.partial(lambda n, i: calls.append((n, i)), name) for name in ("a", "b")}
    seconds = alternate(steps, rounds=3, per_round=2, warmup=1)
    assert {k: len(v) for k, v in seconds.items()} == {"a": 3, "b": 3}
    # warm-up a, b; then rounds a a b b, three times; every call gets a fresh number
    assert [n for n, _ in calls] == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert [i for _, i in calls] == list(range(14))


def test_median_rate_uses_the_median_round() -> None:
    assert median_rate([1.0, 4.0, 2.0], units=8) == 4.0


def test_flops_are_counted_from_the_operations_run() -> None:
    layer = torch.nn.Linear(32, 16, bias=False)
    x = torch.randn(8, 32)
    assert count_flops(lambda: layer(x)) == 2 * 8 * 32 * 16
    # forward + backward: the forward matmul and the weight's gradient (x needs no gradient)
    assert count_flops(lambda: layer(x).sum().backward()) == 2 * (2 * 8 * 32 * 16)


def test_a_precision_far_slower_than_the_fastest_is_timed_by_one_step_alone() -> None:
    from hotstart.experiments.throughput import slow_precisions

    # a CPU without AVX-512: bf16 about 50x slower than fp32; one with AMX: bf16 faster
    assert slow_precisions({"fp32": 3.0, "bf16": 150.0}) == {"bf16"}
    assert slow_precisions({"fp32": 3.0, "bf16": 1.8}) == set()
    assert slow_precisions({"fp32": 3.0, "bf16": 4.0}) == set()  # a third slower: timed in rounds as before
