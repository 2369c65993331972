"Sweeps survive a SIGKILL: the resumed run ends with the same top-k as an uninterrupted one."

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tradekit.data import synthetic_bars
from tradekit.sweeps import sma_cross_sweep

GRID = (range(2, 62), range(10, 410, 4), (0.0, 0.001, 0.002, 0.005))  # 24,000 combinations
BUDGET = "40MB"  # about 870 combinations per chunk on 5,000 bars with one thread: 28 chunks
SWEEP = f"""
from tradekit.data import synthetic_bars
from tradekit.sweeps import sma_cross_sweep
sma_cross_sweep(synthetic_bars(5000, seed=11).close, {", ".join(map(repr, GRID))}, max_memory={BUDGET!r},
                checkpoint={{ckpt!r}})
"""


def test_sweep_resumes_after_sigkill(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SWEEP.format(ckpt=str(ckpt))], env=env)
    deadline = time.monotonic() + 90
    while len(list(ckpt.glob("chunk_*.npy"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    done = len(list(ckpt.glob("chunk_*.npy")))
    close = synthetic_bars(5000, seed=11).close
    resumed = sma_cross_sweep(close, *GRID, top_k=10, max_memory=BUDGET, checkpoint=ckpt)
    assert done < len(list(ckpt.glob("chunk_*.npy")))  # the resumed run finished the rest
    straight = sma_cross_sweep(close, *GRID, top_k=10)
    pd.testing.assert_frame_equal(resumed.top, straight.top)
    pd.testing.assert_frame_equal(resumed.table, straight.table)
