"""Grids of runs and what is made from them: sweeps, the report and its verdicts, the paper's
numbers, throughput timings, the demo."""
