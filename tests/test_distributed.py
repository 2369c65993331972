"""tradekit.distributed on two local worker processes on loopback; serial equality; a killed worker."""

import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradekit.backtest import sweep
from tradekit.config import load_settings
from tradekit.data import synthetic_bars
from tradekit.distributed import (
    backtest_symbols,
    connect,
    run_tasks,
    sweep_grid,
    train_large,
    train_symbols,
    train_walk_forward,
)
from tradekit.features.sets import compute_features
from tradekit.models.base import load_model, save_model
from tradekit.models.boosting import LGBMParams, XGBParams
from tradekit.models.training import MemberSpec, TrainSpec, training_data
from tradekit.models.validation import WalkForward
from tradekit.strategy import SMACross

pytestmark = pytest.mark.timeout(180)

SPEC = TrainSpec(
    members=(
        MemberSpec(kind="lgbm", params={"n_estimators": 8, "n_jobs": 1}),
        MemberSpec(kind="xgb", params={"n_estimators": 8, "n_jobs": 1, "subsample": 0.8}),
    ),
    n_splits=2,
)
SPLIT = WalkForward(train_size=700, test_size=350)
GRID = {"fast": [5, 10, 20, 30], "slow": [40, 60, 80]}
# made before the workers fork from this process, so they see the same path
KILL_MARKER = Path(tempfile.gettempdir()) / f"tradekit-test-distributed-kill-{os.getpid()}"


@pytest.fixture(scope="module")
def client():
    "Two single-threaded worker processes on 127.0.0.1, forked from this (already warm) process."
    # compile numba's code for both paths once, here: the forked workers inherit it
    sweep(SMACross, {"fast": [5, 10], "slow": [40]}, synthetic_bars(300))
    backtest_symbols(SPEC, {"W": synthetic_bars(1050, seed=99)}, SPLIT, progress=False)
    with connect(load_settings(dask_scheduler=""), n_workers=2, start_method="fork") as client:
        yield client


@pytest.fixture(scope="module")
def universe():
    return {f"S{i}": synthetic_bars(1050, seed=i, symbol=f"S{i}") for i in range(2)}


def _proba(result, bars):
    return result.model.predict_proba(compute_features(SPEC.feature_set, bars).dropna())


def test_local_cluster_is_two_processes_on_loopback(client):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert all(w["nthreads"] == 1 for w in workers.values())


def test_env_var_points_at_a_running_scheduler(client, monkeypatch):
    monkeypatch.setenv("TRADEKIT_DASK_SCHEDULER", client.scheduler.address)
    with connect() as remote:  # no code change: the same call reaches the existing cluster
        assert remote.scheduler.address == client.scheduler.address
        assert run_tasks(abs, {"a": (-2,), "b": (3,)}, remote, progress=False) == {"a": 2, "b": 3}


def test_walk_forward_folds_serial_equals_cluster(client):
    bars = synthetic_bars(1400, seed=11)
    on_cluster = train_walk_forward(SPEC, bars, SPLIT, client=client, progress=False)
    serial = train_walk_forward(SPEC, bars, SPLIT, progress=False)
    assert len(on_cluster) == len(serial) == 2
    for a, b in zip(on_cluster, serial, strict=True):
        assert a.metrics == pytest.approx(b.metrics, rel=1e-12)
        np.testing.assert_allclose(_proba(a, bars), _proba(b, bars), rtol=1e-12)


def test_symbols_and_sweeps_serial_equal_cluster(client, universe):
    trained = train_symbols(SPEC, universe, client=client, progress=False)
    assert list(trained) == list(universe)
    s0 = universe["S0"]
    serial = train_symbols(SPEC, {"S0": s0}, progress=False)["S0"]
    np.testing.assert_allclose(_proba(trained["S0"], s0), _proba(serial, s0))
    table = backtest_symbols(SPEC, universe, SPLIT, client=client, progress=False)
    pd.testing.assert_frame_equal(table, backtest_symbols(SPEC, universe, SPLIT, progress=False))
    assert list(table.index) == list(universe) and (table.windows == 1).all()
    swept = sweep_grid(SMACross, GRID, universe, client=client, parts=2, progress=False)
    pd.testing.assert_frame_equal(swept, sweep_grid(SMACross, GRID, universe, progress=False))
    assert len(swept) == 2 * 12 and swept.groupby("symbol").size().eq(12).all()


class _KillOnce(SMACross):
    "SMACross whose first call anywhere SIGKILLs the worker process running it (the marker makes it once)."

    def signals(self, **arrays):
        try:
            os.close(os.open(KILL_MARKER, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super().signals(**arrays)
        os.kill(os.getpid(), signal.SIGKILL)


def test_worker_killed_mid_sweep_is_recovered(client, capsys):
    bars = synthetic_bars(2000, seed=5)
    KILL_MARKER.unlink(missing_ok=True)
    before = set(client.run(os.getpid).values())
    try:
        result = sweep_grid(_KillOnce, GRID, bars, client=client)  # one task per `fast` value
    finally:
        killed = KILL_MARKER.exists()
        KILL_MARKER.unlink(missing_ok=True)
    assert killed, "no task ran the kill"
    pd.testing.assert_frame_equal(result, sweep(SMACross, GRID, bars))  # every row once, in order
    assert not result.duplicated(["fast", "slow"]).any() and len(result) == 12
    assert "sweep parts" in capsys.readouterr().out  # the progress bar
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != before  # the nanny restarted the killed worker


@pytest.mark.parametrize(
    "kind, params", [("xgb", XGBParams(n_estimators=15)), ("lgbm", LGBMParams(n_estimators=15))]
)
def test_train_large_on_the_workers(client, kind, params, tmp_path):
    X, y, _ = training_data(TrainSpec(), synthetic_bars(3000, seed=4))
    model = train_large(kind, X, y, client, params)
    p = model.predict_proba(X)
    if kind == "xgb":  # LightGBM's Dask ranks (and so its bins) vary from run to run
        np.testing.assert_array_equal(p, train_large(kind, X, y, client, params).predict_proba(X))
    assert p.shape == (len(X), 2) and np.isfinite(p).all() and p[:, 1].std() > 0
    save_model(model, tmp_path / kind)
    np.testing.assert_array_equal(load_model(tmp_path / kind).predict_proba(X), p)
