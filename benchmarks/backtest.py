"""Backtests: one SMA 10/50 run through vectorbt against a plain Python loop, and parameter sweeps.

Single runs (100,000 synthetic bars, SMA 10/50 crossover, 0.1% fee per side, next-bar-open fills, all in):
`tradekit.backtest.backtest_strategy` end to end (bar checks, SMAs, signals, vectorbt), vectorbt's
`Portfolio.from_signals` alone on the prepared arrays, and a plain Python event loop on the same signals (it
must end on the same equity). Medians of interleaved rounds after a warm-up call (numba compiles or loads its
cache; the cold start is printed separately).
Sweeps: `tradekit.backtest.sweep` over a 100 x 100 grid of SMA windows on the S&P 500 sample (10,000
backtests, metrics included), and a 100-combination grid on the 100,000 synthetic bars (the anchors' case).
Run: `.venv/bin/python benchmarks/backtest.py [--bars N] [--rounds R] [--grid G]`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import vectorbt as vbt

from tradekit.backtest import BacktestSpec, backtest_strategy, sweep
from tradekit.data import load_sample, synthetic_bars
from tradekit.strategy import SMACross

FEES = 0.001


def python_loop(open_: np.ndarray, close: np.ndarray, entries: np.ndarray, exits: np.ndarray) -> float:
    "Final equity of long-only, all-in signals filled at the next bar's open, `FEES` per side."
    cash, units = 100_000.0, 0.0
    for t in range(1, len(open_)):
        if units == 0 and entries[t - 1] and not exits[t - 1]:
            units = cash / (open_[t] * (1 + FEES))
            cash -= units * open_[t] * (1 + FEES)
        elif units > 0 and exits[t - 1] and not entries[t - 1]:
            cash += units * open_[t] * (1 - FEES)
            units = 0.0
    return cash + units * close[-1]


def single_runs(bars: pd.DataFrame, rounds: int) -> list[tuple[str, float, float]]:
    "(label, median ms, final equity) of each single-run implementation."
    spec, rule = BacktestSpec(fees=FEES), SMACross(fast=10, slow=50)
    entries, exits = rule.signals(**rule.inputs(bars))
    e1, x1 = (np.concatenate([[False], a[:-1]]) for a in (entries, exits))  # filled at the next bar's open
    naive = bars.tz_localize(None)  # as tradekit passes them: vectorbt is slow on a tz-aware index
    o, c = bars.open.to_numpy(), bars.close.to_numpy()
    e_list, x_list = entries.tolist(), exits.tolist()  # what a loop over Python objects reads fastest
    cases: list[tuple[str, Callable[[], float]]] = [
        ("tradekit `backtest_strategy` (vectorbt, end to end)",
         lambda: backtest_strategy(rule, bars, spec).final_value()),
        ("vectorbt `from_signals` alone", lambda: vbt.Portfolio.from_signals(
            naive.close, e1, x1, price=naive.open, fees=FEES, init_cash=100_000, size=1.0,
            size_type="percent", freq="1min").final_value()),
        ("plain Python loop", lambda: python_loop(o.tolist(), c.tolist(), e_list, x_list)),
    ]  # fmt: skip
    t0 = time.perf_counter()
    finals = [call() for _, call in cases]
    print(f"cold start (numba compile or cache load, all three): {time.perf_counter() - t0:.1f} s")
    times: list[list[float]] = [[] for _ in cases]
    for r in range(rounds):
        for k in np.random.default_rng(r).permutation(len(cases)):
            t0 = time.perf_counter()
            cases[k][1]()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return [(label, statistics.median(t), f) for (label, _), t, f in zip(cases, times, finals, strict=True)]


def resident_mib() -> float:
    "Peak resident memory of this process so far, MiB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_sweep(bars: pd.DataFrame, grid: dict[str, list[int]]) -> tuple[float, int, pd.DataFrame]:
    "(seconds, combinations, table) of one `sweep` of SMACross over `grid`."
    t0 = time.perf_counter()
    table = sweep(SMACross, grid, bars, BacktestSpec(fees=FEES))
    return time.perf_counter() - t0, len(table), table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--grid", type=int, default=100, help="values per window in the S&P 500 sweep")
    args = parser.parse_args()
    bars = synthetic_bars(args.bars, seed=0)

    print(f"## Single run, {args.bars:,} bars, SMA 10/50, {FEES:.1%} per side (median of {args.rounds})\n")
    rows = single_runs(bars, args.rounds)
    print("| run | ms | final equity |\n|---|---|---|")
    for label, ms, final in rows:
        print(f"| {label} | {ms:.1f} | {final:,.6f} |")
    assert abs(rows[0][2] - rows[2][2]) < 0.005, "vectorbt and the loop disagree"
    print(f"\nloop / vectorbt end to end: {rows[2][1] / rows[0][1]:.2f}×")

    spx = load_sample("sp500")
    g = args.grid
    grid = {"fast": list(range(2, 2 + g)), "slow": list(range(105, 105 + 2 * g, 2))}
    peak = [resident_mib()]
    seconds, n, table = timed_sweep(spx, grid)
    peak.append(resident_mib())
    small_s, small_n, _ = timed_sweep(bars, {"fast": list(range(5, 15)), "slow": list(range(40, 140, 10))})
    peak.append(resident_mib())
    print("\n## Sweeps (`tradekit.backtest.sweep`, metrics included)\n")
    print("| sweep | combinations | wall s | combinations/s | process peak RSS MiB |\n|---|---|---|---|---|")
    print(f"| S&P 500 sample ({len(spx):,} bars), fast 2..{1 + g} x slow 105..{103 + 2 * g} | {n:,} | "
          f"{seconds:.1f} | {n / seconds:,.0f} | {peak[0]:,.0f} → {peak[1]:,.0f} |")  # fmt: skip
    print(f"| synthetic {len(bars):,} bars, 10 x 10 | {small_n} | {small_s:.2f} | {small_n / small_s:,.1f} | "
          f"{peak[1]:,.0f} → {peak[2]:,.0f} |")  # fmt: skip
    best = table.sort_values("sharpe", ascending=False).head(3)
    print("\nbest Sharpe on the S&P 500 grid (in-sample, for orientation only):")
    print(best[["fast", "slow", "sharpe", "annual_return", "max_drawdown", "n_trades"]].round(3).to_string())


if __name__ == "__main__":
    main()
