"""Batch indicators on 1,000,000 bars: tradekit against TA-Lib (and pandas) in the same run.

Times the public functions (pandas Series in, Series/DataFrame out, validation and wrapping included)
against TA-Lib on the same data as numpy arrays, after a warm-up call that compiles the numba kernels.
Rounds are interleaved (every implementation once per round, in a fresh random order) and the table
reports medians; ratio is tradekit / TA-Lib. `log_returns` and `volatility` have no TA-Lib function: their
TA-Lib column is the composition `LN(ROCR)` and `STDDEV(LN(ROCR)) * sqrt(n / (n - 1))`.
Run: `.venv/bin/python benchmarks/features.py [--bars N] [--rounds R] [--no-streaming]`.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import talib

from tradekit.data import synthetic_bars
from tradekit.features import batch as fb


def _pandas_rsi(c: pd.Series, n: int) -> pd.Series:
    d = c.diff()
    gain = d.clip(lower=0).ewm(alpha=1 / n, adjust=False).mean()
    loss = (-d).clip(lower=0).ewm(alpha=1 / n, adjust=False).mean()
    return 100 * gain / (gain + loss)


def _pandas_macd(c: pd.Series) -> pd.DataFrame:
    line = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    signal = line.ewm(span=9, adjust=False).mean()
    return pd.DataFrame({"macd": line, "signal": signal, "hist": line - signal})


def _pd_bands(c: pd.Series) -> pd.DataFrame:
    mid, dev = c.rolling(20).mean(), 2 * c.rolling(20).std(ddof=0)
    return pd.DataFrame({"upper": mid + dev, "middle": mid, "lower": mid - dev})


def _pandas_atr(b: pd.DataFrame) -> pd.Series:
    prev = b.close.shift()
    tr = pd.concat([b.high - b.low, (b.high - prev).abs(), (b.low - prev).abs()], axis=1).max(axis=1)
    return tr.ewm(alpha=1 / 14, adjust=False).mean()


def _pandas_stoch(b: pd.DataFrame) -> pd.DataFrame:
    low, high = b.low.rolling(14).min(), b.high.rolling(14).max()
    k = (100 * (b.close - low) / (high - low)).rolling(3).mean()
    return pd.DataFrame({"k": k, "d": k.rolling(3).mean()})


def cases(b: pd.DataFrame) -> list[tuple[str, Callable, Callable, Callable]]:
    "(label, tradekit call, TA-Lib call, pandas call) for every batch indicator on bars `b`."
    h, lo, c, v = (b[col].to_numpy() for col in ("high", "low", "close", "volume"))
    s, hs, ls, vs = b.close, b.high, b.low, b.volume  # Series taken once, as TA-Lib's arrays are
    logret = lambda: np.log(s / s.shift())
    return [
        ("SMA 20", lambda: fb.sma(s, 20), lambda: talib.SMA(c, 20), lambda: s.rolling(20).mean()),
        ("EMA 20", lambda: fb.ema(s), lambda: talib.EMA(c, 20), lambda: s.ewm(span=20, adjust=False).mean()),
        ("RSI 14", lambda: fb.rsi(s, 14), lambda: talib.RSI(c, 14), lambda: _pandas_rsi(s, 14)),
        ("MACD 12/26/9", lambda: fb.macd(s), lambda: talib.MACD(c, 12, 26, 9), lambda: _pandas_macd(s)),
        ("Bollinger 20/2", lambda: fb.bollinger(s), lambda: talib.BBANDS(c, 20, 2, 2), lambda: _pd_bands(s)),
        ("ATR 14", lambda: fb.atr(hs, ls, s), lambda: talib.ATR(h, lo, c, 14), lambda: _pandas_atr(b)),
        ("Stoch 14/3/3", lambda: fb.stoch(hs, ls, s), lambda: talib.STOCH(h, lo, c, 14, 3, 0, 3, 0),
         lambda: _pandas_stoch(b)),
        ("OBV", lambda: fb.obv(s, vs), lambda: talib.OBV(c, v),
         lambda: (np.sign(s.diff()).fillna(0) * b.volume).cumsum() + b.volume.iloc[0]),
        ("returns 1", lambda: fb.returns(s), lambda: talib.ROCP(c, 1), lambda: s.pct_change()),
        ("log_returns 1", lambda: fb.log_returns(s), lambda: talib.LN(talib.ROCR(c, 1)), logret),
        ("volatility 20", lambda: fb.volatility(s, 20),
         lambda: talib.STDDEV(talib.LN(talib.ROCR(c, 1)), 20) * np.sqrt(20 / 19),
         lambda: logret().rolling(20).std()),
    ]  # fmt: skip


def time_cases(b: pd.DataFrame, rounds: int, seed: int = 0) -> list[dict[str, object]]:
    "Median ms per call of each implementation, over `rounds` interleaved rounds after a warm-up."
    rows = cases(b)
    calls = [call for _label, *impls in rows for call in impls]
    for call in calls:  # warm-up: numba compiles (or loads its cache), pages get touched
        call(), call()
    times: list[list[float]] = [[] for _ in calls]
    order = np.random.default_rng(seed)
    for _ in range(rounds):
        # Collect once per round, not before each call: a full collection leaves the caches cold, which
        # costs a Python wrapper ~0.1-0.5 ms and TA-Lib's thin C wrapper almost nothing. A fresh random
        # order each round: no implementation always runs right after pandas freed its temporaries.
        gc.collect()
        gc.disable()
        for k in order.permutation(len(calls)):
            t0 = time.perf_counter()
            calls[k]()
            times[k].append((time.perf_counter() - t0) * 1e3)
        gc.enable()
    ms = [statistics.median(t) for t in times]
    return [{"indicator": label, "tradekit": ms[3 * i], "talib": ms[3 * i + 1], "pandas": ms[3 * i + 2]}
            for i, (label, *_impls) in enumerate(rows)]  # fmt: skip


def print_table(rows: list[dict[str, object]]) -> None:
    "A markdown table of `time_cases` rows, with a total line."
    total = {k: sum(r[k] for r in rows) for k in ("tradekit", "talib", "pandas")}
    print("| indicator | tradekit ms | TA-Lib ms | ratio | pandas ms |")
    print("|---|---|---|---|---|")
    for r in [*rows, {"indicator": "**sum**", **total}]:
        ms = f"{r['tradekit']:.2f} | {r['talib']:.2f} | {r['tradekit'] / r['talib']:.2f}× | {r['pandas']:.1f}"
        print(f"| {r['indicator']} | {ms} |")


# ---------------------------------------------------------------------------------------------------------
# Streaming benchmark: written by the streaming helper in benchmarks/features_streaming.py.
# That module provides `streaming_table() -> rows` and `print_table(rows)`; this script only calls them.
# ---------------------------------------------------------------------------------------------------------
STREAMING = Path(__file__).with_name("features_streaming.py")


def streaming_table() -> None:
    "Print the streaming benchmark's table, if `benchmarks/features_streaming.py` exists."
    if not STREAMING.exists():
        print(f"(no {STREAMING.name}: streaming benchmark not written yet)")
        return
    spec = importlib.util.spec_from_file_location("features_streaming", STREAMING)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.print_table(module.streaming_table())


# ---------------------------------------------------------------------------------------------------------
# The live quality gate (tradekit.quality) in front of the streaming features: its cost per tick.
# ---------------------------------------------------------------------------------------------------------
def gate_table(n: int = 20_000, rounds: int = 5) -> None:
    "Print the quality gate's cost per tick: one event per call (`check_tick`), and polls of 100 and 500."
    from tradekit.data import synthetic_ticks
    from tradekit.quality import QualityGate

    ticks = synthetic_ticks(n, seed=0)
    records = list(zip(ticks.index, ticks.to_dict("records"), strict=True))
    print("| quality gate (tradekit.quality) | µs per tick |")
    print("|---|---|")
    best = float("inf")
    for _ in range(rounds):
        gate, t0 = QualityGate(), time.perf_counter()
        for at, tick in records:
            gate.check_tick(at, tick)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    print(f"| one event per call (`check_tick`) | {best:.2f} |")
    for batch in (100, 500):
        best = float("inf")
        for _ in range(rounds):
            gate, t0 = QualityGate(), time.perf_counter()
            for i in range(0, n, batch):
                gate.check(ticks.iloc[i : i + batch])
            best = min(best, (time.perf_counter() - t0) / n * 1e6)
        print(f"| polls of {batch} as a frame (`check`) | {best:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-streaming", action="store_true", help="skip the streaming table")
    args = parser.parse_args()
    bars = synthetic_bars(args.bars, seed=0)
    print(f"## Batch indicators, {args.bars:,} bars (median ms of {args.rounds} interleaved rounds)\n")
    print_table(time_cases(bars, args.rounds))
    if not args.no_streaming:
        print("\n## Streaming indicators (benchmarks/features_streaming.py)\n")
        streaming_table()
    print("\n## Live quality gate, synthetic ticks (best of 5)\n")
    gate_table()


if __name__ == "__main__":
    main()
