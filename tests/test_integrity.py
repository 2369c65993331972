"Reproducible runs, the fill model, backtest <-> paper reconciliation and the live quality gate."

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, delete
from typer.testing import CliRunner

from tradekit.backtest import BacktestSpec, backtest
from tradekit.cli import app
from tradekit.config import Settings
from tradekit.data import synthetic_ticks
from tradekit.events import OrderFilled, SubmitOrder, TickReceived
from tradekit.execution.book import AuditRow, FillRow, OrderRow, PositionRow
from tradekit.execution.broker import PaperBroker, PaperSpec
from tradekit.execution.reconcile import load_session, reconcile_session
from tradekit.execution.service import ExecutionSpec, paper_session
from tradekit.fills import Fees, bar_fill, tick_fill
from tradekit.monitoring import QUARANTINED
from tradekit.quality import GateSpec, QualityGate
from tradekit.runs import diff_runs, execute, load_run, rerun, save_run

runner = CliRunner()


def _env(settings: Settings) -> dict[str, str]:
    return {
        "TRADEKIT_PROFILE": "test",
        "TRADEKIT_DATABASE_URL": settings.database_url,
        "TRADEKIT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TRADEKIT_DATA_DIR": str(settings.data_dir),
    }


# --- reproducible runs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored_run(engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    spec = {"data": {"sample": "sp500"}, "params": {"fast": 10, "slow": 50}, "backtest": {"fees": 0.001}}
    run = execute("tradekit.backtest:backtest_run", spec)
    save_run(run, engine, tmp_path_factory.mktemp("report"))
    return run


def test_a_stored_backtest_run_reruns_bit_exact(stored_run, engine: Engine, settings: Settings) -> None:
    again = rerun(load_run(engine, stored_run.id))
    assert again.ok and again.mismatches.empty and again.same_data
    assert again.again.metrics == stored_run.metrics  # bit-exact: tolerance 0
    r = runner.invoke(app, ["runs", "rerun", stored_run.id], env=_env(settings))
    assert r.exit_code == 0 and "reproduced" in r.output, r.output
    tampered = stored_run.model_copy(
        update={"id": "tampered0001", "metrics": {**stored_run.metrics, "sharpe": 9.0}}
    )
    save_run(tampered, engine)
    r = runner.invoke(app, ["runs", "rerun", tampered.id], env=_env(settings))
    assert r.exit_code == 1 and "NOT reproduced" in r.output, r.output


def test_manifest_records_data_code_packages_and_redacted_settings(stored_run, settings: Settings) -> None:
    assert stored_run.rows == 5031 and len(stored_run.data_fingerprint) == 64
    assert stored_run.packages["vectorbt"] and "commit" in stored_run.code
    moved = stored_run.model_copy(
        update={
            "spec": {**stored_run.spec, "params": {"fast": 5, "slow": 50}},
            "code": {**stored_run.code, "dirty": "abc"},
            "packages": {**stored_run.packages, "numpy": "0.0"},
            "data_fingerprint": "0" * 64,
        }
    )
    assert set(diff_runs(stored_run, moved).section) == {"data", "code", "parameters", "packages"}
    secret = settings.model_copy(update={"database_url": "postgresql+psycopg://u:hunter2@h/db"})
    run = execute("tradekit.runs:return_stats", {"data": {"synthetic": {"n": 50}}}, secret)
    assert "hunter2" not in run.to_json() and run.settings["database_url"].endswith("u:***@h/db")


def test_runs_show_and_diff_cli(stored_run, settings: Settings) -> None:
    r = runner.invoke(app, ["runs", "show", stored_run.id], env=_env(settings))
    assert r.exit_code == 0 and "5031 rows" in r.output and "sharpe" in r.output, r.output
    r = runner.invoke(app, ["runs", "diff", stored_run.id, "tampered0001"], env=_env(settings))
    assert r.exit_code == 0 and "metrics" in r.output, r.output


# --- the fill model: golden values ---------------------------------------------------------------------


def test_golden_bar_fills_market_limit_stop() -> None:
    b = dict(open=50.0, high=52.0, low=48.0)
    assert bar_fill("buy", "market", **b, slippage=0.01) == pytest.approx(50.5, abs=1e-12)
    assert bar_fill("buy", "limit", **b, limit=49.0, slippage=0.01) == 49.0  # limits never slip
    assert bar_fill("sell", "limit", **b, limit=53.0) is None
    assert bar_fill("sell", "stop", **b, stop=49.0, slippage=0.01) == pytest.approx(48.51, abs=1e-12)
    assert bar_fill("sell", "stop", open=47.0, high=47.5, low=46.0, stop=49.0) == 47.0  # gap: the open
    assert Fees(bps=5, per_share=0.01, fixed=1.0).fee(200, 50.5) == pytest.approx(200 * 50.5 * 5e-4 + 2 + 1)


def test_backtest_prices_with_the_fill_model() -> None:
    ix = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC", name="timestamp")
    o, c = np.array([20.0, 20, 21, 22, 23]), np.array([20.0, 20.5, 21.5, 22.5, 23])
    bars = pd.DataFrame(
        {"open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c, "volume": 1.0}, ix
    )
    spec = BacktestSpec(init_cash=1000, fees=0.002, fixed_fees=0.5, slippage=0.001)
    pf = backtest(bars, np.array([1, 0, 0, 0, 0], bool), np.array([0, 0, 1, 0, 0], bool), spec)
    orders = pf.orders.records_arr
    assert orders["idx"].tolist() == [1, 3]  # next open, not the signal bar
    assert orders["price"].tolist() == pytest.approx([20 * 1.001, 22 * 0.999], abs=1e-12)  # hand-computed
    units = (1000 - 0.5) / (20.02 * 1.002)
    assert orders["size"][0] == pytest.approx(units)
    assert orders["fees"][0] == pytest.approx(Fees(bps=20, fixed=0.5).fee(units, 20.02))
    assert "OPT-IN" in BacktestSpec(fill="close").describe() and "t+1's open" in spec.describe()


def test_paper_broker_prices_with_the_fill_model() -> None:
    t0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    q = dict(symbol="S", price=10.0, size=100, side=0, bid=9.99, ask=10.01, bid_size=1, ask_size=1)
    broker = PaperBroker(PaperSpec(latency_ms=10, slippage=0.001, fees=Fees(bps=2)))
    o = SubmitOrder(event_time=t0, account="a", symbol="S", side="buy", qty=50)
    broker.submit(o)
    assert broker.on_tick(TickReceived(event_time=t0 + timedelta(milliseconds=5), **q)) == []  # latency
    (fill, _) = broker.on_tick(TickReceived(event_time=t0 + timedelta(milliseconds=10), **q))
    assert isinstance(fill, OrderFilled) and fill.price == pytest.approx(10.01 * 1.001, abs=1e-12)
    assert fill.price == tick_fill("buy", "market", 9.99, 10.01, slippage=0.001)
    assert fill.fee == pytest.approx(50 * 10.01 * 1.001 * 2e-4)


# --- reconciliation -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(settings: Settings, engine: Engine):
    paper = PaperSpec(latency_ms=30, fees=Fees(bps=1, per_share=0.002))
    ticks = synthetic_ticks(2_000, seed=11)
    decisions = pd.DataFrame({"side": ["buy", "sell"] * 8, "qty": 120.0}, index=ticks.index[40::120][:16])
    result = paper_session(settings, ticks, decisions, symbol="RECON", spec=ExecutionSpec(paper=paper))
    yield load_session(engine, result.account, bootstrap=settings.kafka_bootstrap), paper, ticks
    with engine.begin() as conn:
        for model in (OrderRow, FillRow, PositionRow, AuditRow):
            conn.execute(delete(model.__table__).where(model.__table__.c.account == result.account))


def test_recorded_paper_session_matches_its_replay(recorded, settings: Settings) -> None:
    session, paper, ticks = recorded
    assert len(session.ticks) == len(ticks)  # replayed from Kafka
    rec = reconcile_session(session, paper)
    assert rec.match_rate >= 0.99 and len(rec.trades) == 16, rec.divergences
    args = ["reconcile", session.account, "--latency-ms", "30", "--fee-bps", "1", "--per-share", "0.002"]
    r = runner.invoke(app, args, env=_env(settings))
    assert r.exit_code == 0 and "16/16 trades identical (100.0%)" in r.output, r.output
    r = runner.invoke(app, args[:4], env=_env(settings))  # another fee model: every trade's fee differs
    assert r.exit_code == 1 and "fee" in r.output, r.output


def test_injected_faults_are_reported_with_their_cause(recorded) -> None:
    session, paper, ticks = recorded
    f = session.fills.copy()
    first = f.groupby("order_id", sort=False).head(1).index
    late, fee, gone = first[1], first[5], first[9]
    f.loc[late, "time"] = ticks.index[ticks.index.get_loc(pd.Timestamp(f.time[late])) + 2]  # a delayed fill
    f.loc[fee, "fee"] *= 2  # a changed fee
    dropped = session.ticks.drop(pd.Timestamp(f.time[gone]))  # a tick the replay's data lacks
    rec = reconcile_session(replace(session, fills=f, ticks=dropped), paper)
    causes = rec.divergences.set_index("order_id").cause
    assert causes[f.order_id[[late, fee, gone]]].tolist() == ["timing", "fee", "different data"]
    assert len(rec.divergences) == 3 and rec.match_rate == pytest.approx(13 / 16)
    slower = reconcile_session(session, paper.model_copy(update={"latency_ms": 500}))
    assert "timing" in set(slower.divergences.cause)


# --- the live quality gate ------------------------------------------------------------------------------


def test_quality_gate_quarantines_counts_and_alerts() -> None:
    ticks = synthetic_ticks(40, seed=5)
    bad = ticks.copy()
    bad.iloc[5, bad.columns.get_loc("price")] *= 0.8  # a jump outside the band
    bad.iloc[9, bad.columns.get_loc("ask")] = bad.bid.iloc[9] - 0.01  # crossed
    bad = pd.concat(
        [bad.iloc[:20], bad.iloc[19:20], bad.iloc[20:], bad.iloc[2:3]]
    )  # repeated, then a late one
    before = {r: QUARANTINED.labels(reason=r)._value.get() for r in ("price_jump", "duplicate")}
    gate = QualityGate(GateSpec(stale_after_s=2, max_jump=0.05), symbol="SYN")
    out = [gate.check(bad.iloc[i : i + 7]) for i in range(0, len(bad), 7)]  # polls of 7
    reasons = pd.concat([o.quarantined for o in out]).reason.tolist()
    assert reasons == ["price_jump", "crossed_quote", "duplicate", "out_of_order"]
    assert sum(len(o.passed) for o in out) == 38
    assert QUARANTINED.labels(reason="duplicate")._value.get() - before["duplicate"] == 1
    alerts = gate.heartbeat(ticks.index[-1] + pd.Timedelta(seconds=3))
    assert [(a.rule, a.severity) for a in alerts] == [("stale_feed", "critical")]
