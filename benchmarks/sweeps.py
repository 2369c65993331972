"""Sweeps: a 1,000,000-combination SMA-cross sweep on 5,000 bars, beside vectorbt's plain broadcast call.

The rule: long when SMA(fast) closes above SMA(slow) by more than `threshold`, flat when below by more than
it, 0.05% fee per unit of position changed. Grid: 100 fast (2..200) x 100 slow (10..1000) x 100 thresholds
(0..0.99%) on the last 5,000 bars of the S&P 500 sample. `tradekit.sweeps.sma_cross_sweep` keeps summary
statistics of every combination and the top 20 under `--max-memory`. vectorbt runs its usual broadcast call
(`MA.run` for both windows, band signals, `Portfolio.from_signals`, Sharpe of the returns) on growing slices
of the same grid, stopping at the first slice over the 2 GiB target. Each case runs in a fresh process, so its
peak RSS (`ru_maxrss`) is its own. The best Sharpe ratio of each slice is printed for both, as a check.
Run: `.venv/bin/python benchmarks/sweeps.py [--max-memory 1GiB] [--vbt 1000,2000,3000,4000]`.
The machine may be shared: wall-clock rates vary with its load; CPU seconds (all threads) vary less.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

FAST, SLOW, BAND, FEE = np.arange(2, 202, 2), np.arange(10, 1010, 10), np.arange(100) / 10_000, 0.0005
TARGET = 2 * 2**30


def _close():  # noqa: ANN202
    from tradekit.data import load_sample

    return load_sample("sp500").close.iloc[-5000:]


def _grid(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    "The first `n` combinations of the grid, in sweep order (threshold fastest), as parallel arrays."
    i, j, k = np.unravel_index(np.arange(n), (len(FAST), len(SLOW), len(BAND)))
    return FAST[i], SLOW[j], BAND[k]


def run_tradekit(max_memory: str, prefixes: list[int]) -> dict:
    from tradekit.sweeps import sma_cross_sweep

    close = _close()
    sma_cross_sweep(close.iloc[:300], FAST[:2], SLOW[:2], BAND[:2])  # compile or load the numba cache
    t0, c0 = time.perf_counter(), time.process_time()
    res = sma_cross_sweep(close, FAST, SLOW, BAND, fee=FEE, max_memory=max_memory)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    best, sr = res.top.iloc[0], res.table.sharpe.to_numpy()
    prefix = {n: (float(np.nanmax(sr[:n])), int(np.nanargmax(sr[:n]))) for n in prefixes}
    winner = [int(best.fast), int(best.slow), float(best.threshold)]
    return {
        "n": len(res.table),
        "s": secs,
        "cpu": cpu,
        "best": winner,
        "sharpe": float(best.sharpe),
        "prefix": prefix,
    }


def run_vectorbt(n: int) -> dict:
    import vectorbt as vbt

    def sharpes(close, fast, slow, band):  # noqa: ANN001, ANN202
        f = vbt.MA.run(close, window=fast, short_name="fast").ma.to_numpy()
        s = vbt.MA.run(close, window=slow, short_name="slow").ma.to_numpy()
        entries, exits = f > s * (1 + band), f < s * (1 - band)
        r = vbt.Portfolio.from_signals(close, entries, exits, fees=FEE, freq="1D").returns().to_numpy()
        return r.mean(0) / r.std(0, ddof=1)

    close = _close().tz_localize(None)
    sharpes(close.iloc[:300], *(g[:2] for g in _grid(2)))  # compile or load vectorbt's numba cache
    t0, c0 = time.perf_counter(), time.process_time()
    sharpe = sharpes(close, *_grid(n))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "n": n,
        "s": secs,
        "cpu": cpu,
        "sharpe_max": float(np.nanmax(sharpe)),
        "argmax": int(np.nanargmax(sharpe)),
    }


def child(args: list[str], vbt: str) -> dict:
    "Run one case in a fresh process; its result and peak RSS."
    cmd = [sys.executable, __file__, "--vbt", vbt, "--child", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--max-memory", default="1GiB")
    p.add_argument("--vbt", default="1000,2000,3000,4000")
    p.add_argument("--child", nargs="+")
    a = p.parse_args()
    if a.child:
        kind, arg = a.child
        sizes = [int(n) for n in a.vbt.split(",")]
        res = run_tradekit(arg, sizes) if kind == "tradekit" else run_vectorbt(int(arg))
        res["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps(res))
        return
    rows = [("tradekit sma_cross_sweep", child(["tradekit", a.max_memory], a.vbt))]
    for n in map(int, a.vbt.split(",")):
        r = child(["vectorbt", str(n)], a.vbt)
        rows.append((f"vectorbt broadcast, first {n:,} combinations", r))
        if r["rss"] > TARGET:
            break
    print("| case | combinations | wall s | CPU s | combinations/s | per CPU s | peak RSS (MiB) | ≤ 2 GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['n']:,} | {r['s']:.1f} | {r['cpu']:.1f} | {r['n'] / r['s']:,.0f} | "
            f"{r['n'] / r['cpu']:,.0f} | {r['rss'] / 2**20:,.0f} | {'yes' if r['rss'] <= TARGET else 'no'} |"
        )
    print(
        f"tradekit winner (fast, slow, threshold) {rows[0][1]['best']}, Sharpe/bar {rows[0][1]['sharpe']:.4f}"
    )
    prefix = rows[0][1]["prefix"]
    for name, r in rows[1:]:
        mine = prefix[str(r["n"])]
        print(f"{name}: best Sharpe/bar {r['sharpe_max']:.4f} at combination {r['argmax']}; "
              f"tradekit on the same combinations: {mine[0]:.4f} at {mine[1]}")  # fmt: skip


if __name__ == "__main__":
    main()
