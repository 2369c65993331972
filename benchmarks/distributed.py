"""Per-symbol training + backtest on a synthetic universe: serially, then as Dask tasks on local workers.

Each symbol is one task of `tradekit.distributed.backtest_symbols`: seeded synthetic minute bars made on the
worker (a loader is sent, not the data), a walk-forward window trained with `train` (one LightGBM member,
purged 2-fold CV, isotonic calibration) and the out-of-sample probabilities backtested with vectorbt beside
buy-and-hold. The same universe runs serially in this process and on a LocalCluster of `--workers`
single-threaded processes on loopback; the two tables must be equal. The two runs alternate over `--rounds`
slices of the universe (a shared machine's load drifts), and CPU seconds (this process, plus the workers' for
the cluster) are printed beside wall time. Scheduler overhead is measured with no-op tasks through the same
`run_tasks` path. The workers are forked from this process after a warm-up call, so neither side pays imports
or numba compilation inside the timed runs (cluster start-up is printed separately). The projection for a
larger cluster is `serial CPU per task x tasks / workers + scheduler overhead per task x tasks`.
Run: `.venv/bin/python benchmarks/distributed.py [--symbols 500] [--bars 600] [--workers 2] [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time

# this file's name is the `distributed` package's: keep its folder off the import path
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from tradekit.config import load_settings  # noqa: E402
from tradekit.data import synthetic_bars  # noqa: E402
from tradekit.distributed import backtest_symbols, connect, run_tasks  # noqa: E402
from tradekit.models.training import MemberSpec, TrainSpec  # noqa: E402
from tradekit.models.validation import WalkForward  # noqa: E402

SPEC = TrainSpec(members=(MemberSpec(kind="lgbm", params={"n_estimators": 20, "n_jobs": 1}),), n_splits=2)


def universe(symbols: int, bars: int) -> dict[str, functools.partial]:
    "Symbol -> a loader of its seeded synthetic bars (run where the task runs)."
    return {
        f"SYM{i:05d}": functools.partial(synthetic_bars, bars, seed=i, symbol=f"SYM{i:05d}")
        for i in range(symbols)
    }


def cpu_s() -> float:
    "User + system CPU seconds of this process so far."
    t = psutil.Process().cpu_times()
    return t.user + t.system


def measured(fn, *args, **kwargs) -> tuple[float, float, object]:
    "(wall s, this process's CPU s, result) of one call."
    t0, c0 = time.perf_counter(), cpu_s()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, cpu_s() - c0, out


def rounds(a, client, split) -> dict[str, float]:
    "Serial and cluster runs interleaved over `--rounds` slices of the universe, so load drift hits both."
    uni, tot = (
        universe(a.symbols, a.bars),
        dict.fromkeys(["serial", "serial_cpu", "cluster", "here", "workers"], 0.0),
    )
    for r in range(a.rounds):
        part = dict(list(uni.items())[r :: a.rounds])
        wall, cpu, serial = measured(backtest_symbols, SPEC, part, split, progress=False)
        before = sum(client.run(cpu_s).values())
        c_wall, c_cpu, on_cluster = measured(
            backtest_symbols, SPEC, part, split, client=client, progress=False
        )
        pd.testing.assert_frame_equal(on_cluster, serial)  # same seeds, same models, same metrics
        spent = (wall, cpu, c_wall, c_cpu, sum(client.run(cpu_s).values()) - before)
        for key, value in zip(tot, spent, strict=True):
            tot[key] += value
    return tot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--bars", type=int, default=600, help="bars per symbol")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved serial/cluster slices")
    ap.add_argument("--noop", type=int, default=2000, help="no-op tasks for the scheduler overhead")
    ap.add_argument("--target-symbols", type=int, default=5000)
    ap.add_argument("--target-workers", type=int, default=50)
    a = ap.parse_args()
    split = WalkForward(train_size=a.bars * 2 // 3, test_size=a.bars - a.bars * 2 // 3)
    load0 = os.getloadavg()[0]
    backtest_symbols(SPEC, universe(1, a.bars), split, progress=False)  # imports, numba compiles: not timed
    local = load_settings(dask_scheduler="")  # a LocalCluster even where TRADEKIT_DASK_SCHEDULER is set
    with contextlib.ExitStack() as stack:
        start_s, _, client = measured(
            stack.enter_context, connect(local, n_workers=a.workers, start_method="fork")
        )
        tot = rounds(a, client, split)
        noop_s, _, _ = measured(run_tasks, abs, {i: (-i,) for i in range(a.noop)}, client, progress=False)
    report(a, tot, start_s, noop_s / a.noop, load0)


def report(a, tot: dict[str, float], start_s: float, noop: float, load0: float) -> None:
    k, n, w = a.symbols, a.target_symbols, a.target_workers
    print(
        f"\n{k} symbols x {a.bars} bars, per-symbol walk-forward training + backtest, {a.rounds} interleaved "
        f"rounds (load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n"
    )
    print("| run | wall s | CPU s | wall ms / symbol | CPU ms / symbol | speed-up (wall) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| serial, this process | {tot['serial']:.1f} | {tot['serial_cpu']:.1f} | "
        f"{tot['serial'] / k * 1e3:.0f} | {tot['serial_cpu'] / k * 1e3:.0f} | 1.00x |"
    )
    print(
        f"| Dask, {a.workers} local workers: workers' CPU | {tot['cluster']:.1f} | {tot['workers']:.1f} | "
        f"{tot['cluster'] / k * 1e3:.0f} | {tot['workers'] / k * 1e3:.0f} | "
        f"{tot['serial'] / tot['cluster']:.2f}x |"
    )
    print(
        f"| ... client + scheduler + nannies (this process) | | {tot['here']:.1f} | | "
        f"{tot['here'] / k * 1e3:.1f} | |"
    )
    print(f"| cluster start ({a.workers} forked workers) | {start_s:.1f} | | | | |")
    print(f"| {a.noop} no-op tasks, submitted together | {noop * a.noop:.1f} | | {noop * 1e3:.2f} | | |")
    task, sched = tot["workers"] / k, tot["here"] / k
    print(f"\nProjection, {n} symbols on {w} workers: {task * 1e3:.0f} ms of worker CPU per task x {n} / {w} "
          "= "
          f"{task * n / w:.0f} s, plus {sched * 1e3:.1f} ms of client + scheduler CPU per task x {n} = "
          f"{sched * n:.0f} s if none of it overlaps -> ~{task * n / w + sched * n:.0f} s (serially: "
          f"{tot['serial_cpu'] / k * n / 60:.0f} min of CPU). The scheduler is one process: past "
          f"~{task / sched:.0f} workers it, not the workers, bounds tasks this size; bigger tasks (several "
          "symbols each) move that bound.")  # fmt: skip


if __name__ == "__main__":
    main()
