"""Streaming indicators: µs per tick after 1,000 bars of history.

Each tradekit streaming class next to TA-Lib 0.8's `talib.stream` handle and to a plain "TA-Lib batch function
on the last 500 bars, every tick" baseline, all in the same run; then the full feature vector (every indicator
updated for one bar). Best of 5 repeats. Run: `.venv/bin/python benchmarks/features_streaming.py`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import numpy as np
import talib
from talib import stream

from tradekit.data import synthetic_bars
from tradekit.features import streaming as s
from tradekit.features.sets import BAR_COLUMNS, CORE_FEATURES, FeatureStream

HISTORY, TICKS, WINDOW_TICKS, WINDOW, REPEATS = 1_000, 20_000, 2_000, 500, 5
OHLV = ("high", "low", "close", "volume")

# label, tradekit indicator, its inputs, TA-Lib function and its parameters (None: TA-Lib has no twin)
CASES: list[tuple[str, Callable[[], s.Indicator], tuple[str, ...], str | None, tuple]] = [
    ("SMA 20", lambda: s.SMA(20), ("close",), "SMA", (20,)),
    ("EMA 20", lambda: s.EMA(20), ("close",), "EMA", (20,)),
    ("RSI 14", lambda: s.RSI(14), ("close",), "RSI", (14,)),
    ("MACD 12/26/9", lambda: s.MACD(), ("close",), "MACD", (12, 26, 9)),
    ("Bollinger 20/2", lambda: s.Bollinger(), ("close",), "BBANDS", (20, 2.0, 2.0)),
    ("ATR 14", lambda: s.ATR(14), ("high", "low", "close"), "ATR", (14,)),
    ("Stochastic 14/3/3", lambda: s.Stochastic(), ("high", "low", "close"), "STOCH", (14, 3, 0, 3, 0)),
    ("OBV", lambda: s.OBV(), ("close", "volume"), "OBV", ()),
    ("RollingVolatility 20", lambda: s.RollingVolatility(20), ("close",), None, ()),
    ("Returns 1", lambda: s.Returns(1), ("close",), "ROCP", (1,)),
    ("LogReturns 1", lambda: s.LogReturns(1), ("close",), None, ()),
]  # fmt: skip


def _per_tick(run: Callable[[], int]) -> float:
    "Best of REPEATS runs of `run` (which returns its tick count), in µs per tick."
    best = float("inf")
    for _ in range(REPEATS):
        gc.disable()
        t0 = time.perf_counter()
        ticks = run()
        best = min(best, (time.perf_counter() - t0) / ticks)
        gc.enable()
    return best * 1e6


def _rows(data: dict[str, np.ndarray], inputs: tuple[str, ...], ticks: bool) -> list[tuple[float, ...]]:
    "The history (ticks=False) or the timed ticks as tuples of `inputs`."
    part = slice(HISTORY, None) if ticks else slice(None, HISTORY)
    return list(zip(*(data[c][part].tolist() for c in inputs), strict=True))


def _replayed(make: Callable[[], s.Indicator], inputs: tuple[str, ...], data: dict) -> s.Indicator:
    ind = make()
    for row in _rows(data, inputs, ticks=False):
        ind.update(*row)
    return ind


def _timed_updates(open_handle: Callable[[], Callable], rows: list) -> Callable[[], int]:
    "A run calling the update `open_handle()` returns (a fresh copy each repeat) once per tick."

    def run() -> int:
        update = open_handle()
        for row in rows:
            update(*row)
        return len(rows)

    return run


def _tradekit(make: Callable[[], s.Indicator], inputs: tuple[str, ...], data: dict) -> Callable[[], int]:
    saved = _replayed(make, inputs, data)
    state, cls = saved.state(), type(saved)
    return _timed_updates(lambda: cls.from_state(state).update, _rows(data, inputs, ticks=True))


def _talib_stream(name: str, params: tuple, inputs: tuple[str, ...], data: dict) -> Callable[[], int]:
    handle = getattr(stream, name)(*(data[c][:HISTORY] for c in inputs), *params)
    return _timed_updates(lambda: handle.copy().update, _rows(data, inputs, ticks=True))


def _window_batch(name: str, params: tuple, inputs: tuple[str, ...], data: dict) -> Callable[[], int]:
    fn, arrays = getattr(talib, name), [data[c] for c in inputs]

    def run() -> int:
        for i in range(HISTORY, HISTORY + WINDOW_TICKS):
            fn(*(a[i - WINDOW + 1 : i + 1] for a in arrays), *params)
        return WINDOW_TICKS

    return run


def _tradekit_step(inds: list, h: float, lo: float, c: float, v: float) -> list:
    sma, ema, rsi, macd, bb, atr, stoch, obv, vol, ret, logret = inds
    out = [sma.update(c), ema.update(c), rsi.update(c), *macd.update(c), *bb.update(c), atr.update(h, lo, c)]
    return out + [*stoch.update(h, lo, c), obv.update(c, v), vol.update(c), ret.update(c), logret.update(c)]


def _talib_step(handles: list, h: float, lo: float, c: float, v: float) -> list:
    sma, ema, rsi, macd, bb, atr, stoch, obv, ret = handles
    out = [sma.update(c), ema.update(c), rsi.update(c), *macd.update(c), *bb.update(c), atr.update(h, lo, c)]
    return out + [*stoch.update(h, lo, c), obv.update(c, v), ret.update(c)]


def _per_bar(open_all: Callable[[], list], step: Callable, rows: list) -> Callable[[], int]:
    "A run feeding each bar to every handle `open_all()` returns (fresh copies each repeat) through `step`."

    def run() -> int:
        handles = open_all()
        for bar in rows:
            step(handles, *bar)
        return len(rows)

    return run


def _tradekit_vector(data: dict) -> Callable[[], int]:
    "All 11 tradekit indicators, resumed each repeat from their state after HISTORY bars."
    inds = [make() for _, make, *_ in CASES]
    for bar in _rows(data, OHLV, ticks=False):
        _tradekit_step(inds, *bar)
    states = [(type(i), i.state()) for i in inds]
    resume = lambda: [cls.from_state(st) for cls, st in states]
    return _per_bar(resume, _tradekit_step, _rows(data, OHLV, True))


def _talib_vector(data: dict) -> Callable[[], int]:
    "The 9 `talib.stream` handles that have a tradekit twin, opened on HISTORY bars."
    handles = [getattr(stream, n)(*(data[c][:HISTORY] for c in i), *p) for _, _, i, n, p in CASES if n]
    return _per_bar(lambda: [h.copy() for h in handles], _talib_step, _rows(data, OHLV, True))


def _window_vector(runs: list[Callable[[], int]]) -> Callable[[], int]:
    "Every window baseline over the same ticks: the per-tick cost is their sum."
    return lambda: sum(r() for r in runs) // len(runs)


def _feature_set(bars) -> Callable[[], int]:
    "`FeatureStream(CORE_FEATURES).update(bar)` with a bar dict, as serving calls it; resumed each repeat."
    stream, records = FeatureStream(CORE_FEATURES), bars[list(BAR_COLUMNS)].to_dict("records")
    for bar in records[:HISTORY]:
        stream.update(bar)
    saved, ticks = stream.state(), records[HISTORY:]

    def run() -> int:
        update = FeatureStream.from_state(CORE_FEATURES, saved).update
        for bar in ticks:
            update(bar)
        return len(ticks)

    return run


def streaming_table() -> list[dict[str, object]]:
    "One row per streaming indicator and one for the full feature vector, in µs per tick."
    bars = synthetic_bars(HISTORY + TICKS, seed=3)
    data, rows, windows = {c: bars[c].to_numpy(float) for c in OHLV}, [], []
    for label, make, inputs, name, params in CASES:
        row = {"indicator": label, "tradekit_us": _per_tick(_tradekit(make, inputs, data))}
        if name is not None:
            windows.append(_window_batch(name, params, inputs, data))
            row["talib_stream_us"] = _per_tick(_talib_stream(name, params, inputs, data))
            row["window_us"] = _per_tick(windows[-1])
        rows.append(row)
    vector = {"indicator": "full vector: 11 indicators (TA-Lib: the 9 it has)"}
    vector["tradekit_us"] = _per_tick(_tradekit_vector(data))
    vector["talib_stream_us"] = _per_tick(_talib_vector(data))
    vector["window_us"] = _per_tick(_window_vector(windows))
    n = len(CORE_FEATURES.features)
    core = {"indicator": f"FeatureStream(CORE_FEATURES): {n} features, {len(CORE_FEATURES.columns)} columns"}
    core["tradekit_us"] = _per_tick(_feature_set(bars))
    return rows + [vector, core]


def print_table(rows: list[dict[str, object]]) -> None:
    "A markdown table of `streaming_table()`'s rows, with tradekit's ratio to `talib.stream`."
    print(f"| indicator | tradekit µs | talib.stream µs | TA-Lib on {WINDOW} bars µs | ÷ stream |")
    print("|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r[c]:.2f}" if c in r else "–" for c in ("tradekit_us", "talib_stream_us", "window_us")]
        ratio = f"{r['tradekit_us'] / r['talib_stream_us']:.1f}×" if "talib_stream_us" in r else "–"
        print(f"| {r['indicator']} | {' | '.join(cells)} | {ratio} |")


if __name__ == "__main__":
    print(f"{HISTORY} bars of history, then {TICKS} ticks ({WINDOW_TICKS} for the window), best of {REPEATS}")
    print_table(streaming_table())
