"""The execution service on the embedded Tansu broker and the real PostgreSQL: a paper session end to end;
a service SIGKILLed a third of the way through 10,000 decisions, at the worst moment (a batch stored, its
offsets not committed), then restarted: each decision handled once, with the outcome of an uninterrupted
run; bad events and risk failures recorded while the stream goes on; a broker that is down or slow; the
kill switch."""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, delete, func, select
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.config import RiskLimits, Settings, load_settings
from tradekit.data import synthetic_ticks
from tradekit.events import (
    DLQ,
    RISK_ALERTS,
    DecisionMade,
    Event,
    ProcessedEvent,
    SubmitOrder,
    consume,
    decode,
    encode,
    publish,
)
from tradekit.execution.book import (
    AuditRow,
    FillRow,
    LastPriceRow,
    OrderRow,
    PositionRow,
    positions_frame,
    read_rows,
    reconcile,
    set_kill_switch,
)
from tradekit.execution.broker import PaperBroker, RetryingBroker, RetrySpec
from tradekit.execution.service import (
    OUTPUT_TOPICS,
    ExecutionService,
    ExecutionSpec,
    market_events,
    paper_session,
    run_execution_service,
)
from tradekit.kafka_client import key_on
from tradekit.services import (
    EmbeddedBroker,
    ensure_topics,
    free_port,
    kafka_consumer,
    kafka_producer,
    open_cache,
)
from tradekit.settings_store import ConfigStore, Flow

ROOT = Path(__file__).resolve().parents[1]
LIMITS = dict(max_position=300, max_notional=1e6, max_orders_per_second=50, price_band=0.05)


@dataclass(frozen=True)
class Run:
    "Names no other test uses: a topic (ticks and decisions), a consumer group, an account, a symbol."

    topic: str
    group: str
    account: str
    symbol: str

    @property
    def spec(self) -> ExecutionSpec:
        return ExecutionSpec(group_id=self.group, decisions_topic=self.topic, ticks_topic=self.topic)


@pytest.fixture
def run(engine: Engine) -> Iterator[Run]:
    tag = uuid.uuid4().hex[:10]
    r = Run(f"tradekit.test.execution.v1.{tag}", f"exec-{tag}", f"acc-{tag}", f"S{tag}")
    yield r
    forget(engine, [r.account], r.group)


def forget(engine: Engine, accounts: list[str], group: str | None = None) -> None:
    "Delete the accounts' book and audit rows, and the group's last prices: the test database is shared."
    with engine.begin() as conn:  # only processed_events stay behind
        for model in (OrderRow, FillRow, PositionRow, AuditRow):
            conn.execute(delete(model.__table__).where(model.__table__.c.account.in_(accounts)))
        if group is not None:
            conn.execute(delete(LastPriceRow.__table__).where(LastPriceRow.__table__.c.group_id == group))


def send(bootstrap: str, topic: str, events: list[Event | bytes]) -> None:
    "Publish events (or raw bytes) to `topic`, in order."
    ensure_topics(bootstrap, topic, *OUTPUT_TOPICS)
    producer = kafka_producer(bootstrap, linger_ms=5, batch_size=1 << 20)
    for e in events:
        if isinstance(e, bytes):
            producer.send(topic, e, key=b"raw")
        else:
            publish(producer, e, topic)
    producer.flush()
    producer.close()


def decision(r: Run, at: pd.Timestamp, side: str = "buy", qty: float = 10, **kw) -> DecisionMade:
    return DecisionMade(
        event_time=at.to_pydatetime(), symbol=r.symbol, account=r.account, side=side, qty=qty, **kw
    )


def orders(engine: Engine, r: Run) -> pd.DataFrame:
    return read_rows(engine, OrderRow, r.account)


def count(engine: Engine, model: type[SQLModel], **where: str) -> int:
    t = model.__table__
    with engine.connect() as conn:
        clause = [t.c[k] == v for k, v in where.items()]
        return conn.execute(select(func.count()).select_from(t).where(*clause)).scalar()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def ends(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    ensure_topics(bootstrap, topic)
    consumer = kafka_consumer(bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return consumer.end_offsets(parts)
    finally:
        consumer.close()


def published(
    bootstrap: str, start: dict[TopicPartition, int], want: Callable[[Event], bool], n: int
) -> list:
    "The first `n` events after `start` that `want` picks (Tansu may re-deliver part of a batch: by id)."
    consumer, found = kafka_consumer(bootstrap), {}
    consumer.assign(list(start))
    for tp, offset in start.items():
        consumer.seek(tp, offset)
    deadline = time.monotonic() + 15
    try:
        while len(found) < n and time.monotonic() < deadline:
            for records in consumer.poll(200).values():
                events = (decode(rec.value) for rec in records)
                found.update({e.id: e for e in events if want(e)})
    finally:
        consumer.close()
    return list(found.values())


class Flaky:
    "A paper broker whose first `failures` submissions raise `TimeoutError`."

    def __init__(self, failures: int):
        self.paper, self.left = PaperBroker(), failures

    def submit(self, order: SubmitOrder) -> list:
        if self.left > 0:
            self.left -= 1
            raise TimeoutError("no answer in 2 s")
        return self.paper.submit(order)

    def __getattr__(self, name: str):
        return getattr(self.paper, name)


def test_paper_session_streams_ticks_and_decisions_into_orders_fills_and_pnl(
    settings: Settings, engine: Engine
) -> None:
    ticks = synthetic_ticks(3_000, seed=4)
    decisions = pd.DataFrame({"side": ["buy", "sell"] * 10, "qty": 120.0}, index=ticks.index[50::150])
    decisions.iloc[3] = ["buy", 950.0]  # 120 held + 950 > max_position 1000: rejected, the session goes on
    start = ends(settings.kafka_bootstrap, RISK_ALERTS)
    result = paper_session(settings, ticks, decisions, symbol="PAPER")
    try:
        assert result.stats.handled == 3_020 and len(result.orders) == 20
        assert result.orders.status.value_counts().to_dict() == {"filled": 19, "rejected": 1}
        assert "max_position" in result.orders.reason.iloc[3]
        assert result.fills.groupby("order_id").qty.sum().eq(120.0).all()
        assert reconcile(engine, result.account) == []
        pos = result.positions.loc["PAPER"]
        assert pos.qty == pytest.approx(120.0)  # ten buys, nine sells: the fourth became the big buy
        assert pos.pnl == pytest.approx(pos.cash + pos.qty * ticks.price.iloc[-1])
        alerts = published(
            settings.kafka_bootstrap, start, lambda e: getattr(e, "account", "") == result.account, 1
        )
        assert [a.rule for a in alerts] == ["max_position"]
    finally:
        forget(engine, [result.account])


def stream(r: Run, n_decisions: int, n_ticks: int, seed: int = 0) -> list[Event]:
    "Ticks, and decisions strictly between them in time: some off the price band, bursts over the rate."
    ticks = market_events(synthetic_ticks(n_ticks, seed=seed), r.symbol)
    rng = np.random.default_rng(seed)
    gaps = [b.event_time - a.event_time for a, b in zip(ticks, ticks[1:], strict=False)]
    roomy = [i for i, g in enumerate(gaps) if g > timedelta(milliseconds=1)]
    per_gap = np.bincount(rng.choice(roomy, n_decisions), minlength=len(ticks))
    events = []
    for i, t in enumerate(ticks):
        events.append(t)
        for m in range(per_gap[i]):
            at = pd.Timestamp(t.event_time + gaps[i] * (m + 1) / (per_gap[i] + 1))
            price = t.price * (1.2 if rng.random() < 0.02 else 1.0)
            side, qty = ("buy", "sell")[int(rng.integers(2))], float(rng.integers(1, 20))
            events.append(decision(r, at, side, qty, price=price))
    return events


CHILD = """
import sys, time
from pathlib import Path
from tradekit.config import load_settings
from tradekit.execution.service import ExecutionSpec, run_execution_service
from tradekit.kafka_client import KafkaPythonConsumer

commit, calls = KafkaPythonConsumer.commit, []


def stuck_at_the_third(self, *args, **kwargs):  # the third batch is stored, its offsets never committed
    calls.append(1)
    if len(calls) == 3:
        Path(sys.argv[2]).touch()
        time.sleep(600)
    return commit(self, *args, **kwargs)


KafkaPythonConsumer.commit = stuck_at_the_third
run_execution_service(load_settings(), spec=ExecutionSpec.model_validate_json(sys.argv[1]))
"""


def outcomes(engine: Engine, account: str) -> dict:
    o = read_rows(engine, OrderRow, account)
    return {
        d: (s, q, None if pd.isna(p) else round(p, 9), reason)
        for d, s, q, p, reason in zip(
            o.decision_id, o.status, o.filled_qty, o.avg_price, o.reason, strict=True
        )
    }


def limited_settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    "The test profile on `broker`, with the risk `LIMITS`."
    ini = ROOT / "settings.ini"
    return load_settings(
        profile="test", settings_file=ini, kafka_bootstrap=broker.bootstrap, data_dir=tmp_path, risk=LIMITS
    )


def service_process(
    broker: EmbeddedBroker, tmp_path: Path, script: str, spec: ExecutionSpec, path: Path
) -> subprocess.Popen:
    "`script` in a new Python process, as `limited_settings` configure it, given `spec` (JSON) and `path`."
    env = {**os.environ, "TRADEKIT_PROFILE": "test", "TRADEKIT_SETTINGS": str(ROOT / "settings.ini"),
           "TRADEKIT_KAFKA_BOOTSTRAP": broker.bootstrap, "TRADEKIT_DATA_DIR": str(tmp_path),
           **{f"TRADEKIT_RISK__{k.upper()}": str(v) for k, v in LIMITS.items()}}  # fmt: skip
    return subprocess.Popen([sys.executable, "-c", script, spec.model_dump_json(), path], env=env, cwd=ROOT)


def uninterrupted(settings: Settings, spec: ExecutionSpec, events: list[Event], tmp_path: Path) -> Engine:
    "A SQLite database with what one service, never interrupted, makes of `events`, 500 per transaction."
    reference = create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    SQLModel.metadata.create_all(reference)
    service = ExecutionService(settings, spec)
    for i in range(0, len(events), 500):
        with Session(reference) as session, session.begin():
            for e in events[i : i + 500]:
                service(e, session)
    return reference


def test_sigkill_mid_stream_then_restart_handles_each_decision_once(
    broker: EmbeddedBroker, settings: Settings, engine: Engine, run: Run, tmp_path: Path
) -> None:
    events = stream(run, 10_000, 2_000)
    decisions = [e for e in events if isinstance(e, DecisionMade)]
    send(broker.bootstrap, run.topic, events)
    stuck = tmp_path / "stuck"
    child = service_process(broker, tmp_path, CHILD, run.spec, stuck)
    try:
        wait_for(lambda: stuck.exists() or child.poll() is not None, 60)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    stored = count(engine, ProcessedEvent, consumer_group=run.group)
    assert 0 < count(engine, OrderRow, account=run.account) < len(decisions), "not killed mid-stream"

    limited = limited_settings(broker, tmp_path)
    stop, result = threading.Event(), {}
    thread = threading.Thread(
        target=lambda: result.update(stats=run_execution_service(limited, stop=stop.is_set, spec=run.spec))
    )
    thread.start()
    try:
        wait_for(lambda: count(engine, ProcessedEvent, consumer_group=run.group) == len(events), 90)
    finally:
        stop.set()
        thread.join(30)
    assert result["stats"].handled == len(events) - stored  # the rest, once
    assert result["stats"].duplicates > 0  # the stored batch came again and was skipped

    got = orders(engine, run)
    assert len(got) == len(decisions) and got.decision_id.nunique() == len(decisions)
    assert set(got.decision_id) == {d.id for d in decisions}
    audit = read_rows(engine, AuditRow, run.account)
    verdicts = [json.loads(v)["accepted"] for v in audit.detail[audit.kind == "verdict"]]
    assert len(verdicts) == len(decisions) == audit[audit.kind == "decision"].ref.nunique()
    risk_rejected = got.reason.str.contains("price_band|max_position|max_orders_per_second")
    assert (~risk_rejected).sum() == sum(verdicts)  # one order per accepted decision, none lost
    assert 0 < risk_rejected.sum() < len(decisions) / 2
    fills = read_rows(engine, FillRow, run.account)
    assert fills.fill_id.is_unique
    by_order = fills.groupby("order_id").qty.sum()
    assert np.allclose(got.set_index("order_id").filled_qty.reindex(by_order.index), by_order)
    assert reconcile(engine, run.account) == []

    reference = uninterrupted(limited, run.spec, events, tmp_path)
    assert outcomes(engine, run.account) == outcomes(reference, run.account)


SHARING = """
import json, sys
from pathlib import Path
from tradekit.config import load_settings
from tradekit.execution.service import ExecutionService, ExecutionSpec, run_execution_service

rebalanced = ExecutionService.on_rebalance


def told(self, partitions):  # the partitions this process holds, for the test to read
    Path(sys.argv[2]).write_text(json.dumps(sorted(p for _, p in partitions)))
    rebalanced(self, partitions)


ExecutionService.on_rebalance = told
run_execution_service(load_settings(), spec=ExecutionSpec.model_validate_json(sys.argv[1]))
"""


def test_two_services_share_the_partitions_and_one_takes_over_after_a_sigkill(
    broker: EmbeddedBroker, engine: Engine, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    topic, group = f"tradekit.test.execution.shared.v1.{tag}", f"exec-shared-{tag}"
    runs = [Run(topic, group, f"acc-{tag}-{p}", key_on(p, 4, f"S{tag}")) for p in range(4)]
    ensure_topics(broker.bootstrap, topic, *OUTPUT_TOPICS, partitions=4)
    streams = [stream(r, 1_500, 300, seed=p) for p, r in enumerate(runs)]
    events = [e for batch in itertools.zip_longest(*streams) for e in batch if e is not None]
    held = [tmp_path / "held-0", tmp_path / "held-1"]
    children = [service_process(broker, tmp_path, SHARING, runs[0].spec, path) for path in held]
    holds = lambda k: json.loads(held[k].read_text()) if held[k].exists() else []  # noqa: E731
    processed = lambda: count(engine, ProcessedEvent, consumer_group=group)  # noqa: E731
    try:
        wait_for(lambda: len(holds(0)) == len(holds(1)) == 2, 60)  # the group settled: two partitions each
        killed_after = None  # events sent when one service was killed
        for i in range(500, len(events) + 500, 500):  # ~1,000 events/s: one dies while both are busy
            send(broker.bootstrap, topic, events[i - 500 : i])
            time.sleep(0.5)
            if killed_after is None and processed() > len(events) / 3:
                children[1].send_signal(signal.SIGKILL)
                killed_after = i
        assert killed_after is not None and killed_after < len(events), "not killed mid-stream"
        assert children[1].wait() == -signal.SIGKILL and held[1].exists()
        wait_for(lambda: processed() == len(events), 90)  # the survivor took the dead one's partitions over
        assert holds(0) == [0, 1, 2, 3]
    finally:
        for child in children:
            child.kill()
            child.wait()
    limited = limited_settings(broker, tmp_path)
    reference = uninterrupted(limited, runs[0].spec, events, tmp_path)
    try:
        for r, s in zip(runs, streams, strict=True):
            decisions = {e.id for e in s if isinstance(e, DecisionMade)}
            got = orders(engine, r)
            assert len(got) == len(decisions) and set(got.decision_id) == decisions  # each once
            assert reconcile(engine, r.account) == []
            assert outcomes(engine, r.account) == outcomes(reference, r.account)
    finally:
        forget(engine, [r.account for r in runs], group)


def test_bad_events_and_risk_failures_are_recorded_and_the_stream_goes_on(
    broker: EmbeddedBroker, settings: Settings, engine: Engine, run: Run
) -> None:
    tick = market_events(synthetic_ticks(3, seed=5), run.symbol)
    t = pd.Timestamp(tick[0].event_time)
    good = decision(run, t + timedelta(microseconds=1), qty=1, price=tick[0].price)
    risky = decision(run, t + timedelta(microseconds=2), qty=2_000, price=tick[0].price * 1.5)
    raw = json.loads(encode(good))
    payloads = [
        tick[0],
        b"\x00 not json",
        json.dumps({**raw, "version": 2, "id": str(uuid.uuid4())}).encode(),
        json.dumps({**raw, "type": "DecisionTeleported"}).encode(),
        risky,
        SubmitOrder(event_time=good.event_time, account=run.account, symbol=run.symbol, side="buy", qty=1),
        good,
        *tick[1:],
    ]
    dlq, start = f"{DLQ}.{run.group}", ends(broker.bootstrap, RISK_ALERTS)
    send(broker.bootstrap, run.topic, payloads)
    service = ExecutionService(settings, run.spec)
    stats = consume(
        broker.bootstrap, run.topic, run.group, service, engine, max_events=len(payloads), dlq_topic=dlq
    )
    assert (stats.handled, stats.dead_lettered) == (len(payloads) - 4, 4)

    reader = kafka_consumer(broker.bootstrap, dlq, consumer_timeout_ms=5000)
    dead = [{k: v.decode() for k, v in next(reader).headers} for _ in range(4)]
    reader.close()
    assert [h["dlq.reason"] for h in dead] == ["malformed", "unknown_version", "unknown_type", "rejected"]
    assert "not SubmitOrder" in dead[3]["dlq.error"]

    got = orders(engine, run).set_index("decision_id")
    assert got.loc[good.id, "status"] == "filled" and got.loc[risky.id, "status"] == "rejected"
    assert got.loc[risky.id, "reason"].split("; ")[0].startswith("price_band: price")
    audit = read_rows(engine, AuditRow, run.account)
    verdict = json.loads(audit.detail[(audit.kind == "verdict") & (audit.ref == risky.id)].iloc[0])
    assert verdict["accepted"] is False
    assert set(verdict["failures"]) == {"price_band", "max_notional", "max_position"}
    mine = (audit.ref == got.loc[good.id, "order_id"]) & (audit.kind == "order")
    lifecycle = audit[mine].detail.map(lambda d: json.loads(d)["to"])
    assert lifecycle.tolist() == ["new", "accepted", "filled"]
    alerts = published(broker.bootstrap, start, lambda e: getattr(e, "account", "") == run.account, 3)
    assert sorted(a.rule for a in alerts) == ["max_notional", "max_position", "price_band"]

    with engine.begin() as conn:  # every dead letter is in the audit trail too, with its reason and offset
        t = AuditRow.__table__
        rows = conn.execute(select(t.c.detail).where(t.c.kind == "invalid", t.c.detail.contains(run.topic)))
        invalid = [json.loads(d) for d in rows.scalars()]
        conn.execute(delete(t).where(t.c.kind == "invalid", t.c.detail.contains(run.topic)))
    reasons = {d["offset"]: d["reason"] for d in invalid}
    assert reasons == {1: "malformed", 2: "unknown_version", 3: "unknown_type", 5: "rejected"}


def test_broker_down_is_retried_with_backoff_then_rejected_with_the_reason(
    broker: EmbeddedBroker, settings: Settings, engine: Engine, run: Run
) -> None:
    tick = market_events(synthetic_ticks(2, seed=6), run.symbol)
    t = pd.Timestamp(tick[0].event_time)
    first, second = (decision(run, t + timedelta(microseconds=i), qty=1, price=tick[0].price) for i in (1, 2))
    send(broker.bootstrap, run.topic, [tick[0], first, second, tick[1]])
    waits: list[float] = []
    retry = RetrySpec(attempts=3, base_delay_s=0.01)
    service = ExecutionService(
        settings, run.spec, broker=lambda: RetryingBroker(Flaky(5), retry, waits.append)
    )
    stats = consume(broker.bootstrap, run.topic, run.group, service, engine, max_events=4)
    assert stats.handled == 4
    assert waits == [
        0.01,
        0.02,
        0.01,
        0.02,
    ]  # three tries for the first, two failures then success for the second
    got = orders(engine, run).set_index("decision_id")
    assert got.loc[first.id, "status"] == "rejected"
    assert (
        got.loc[first.id, "reason"] == "broker unavailable after 3 attempts: TimeoutError: no answer in 2 s"
    )
    assert got.loc[second.id, "status"] == "filled"


def test_kill_switch_stops_the_next_decision(
    broker: EmbeddedBroker, settings: Settings, engine: Engine, run: Run
):
    ticks = market_events(synthetic_ticks(10, seed=7), run.symbol)
    send(broker.bootstrap, run.topic, ticks[:2])
    stop = threading.Event()
    args = (broker.bootstrap, run.topic, run.group, ExecutionService(settings, run.spec), engine)
    thread = threading.Thread(target=consume, args=args, kwargs=dict(stop=stop.is_set))
    thread.start()
    try:
        statuses = []
        for i, halt in enumerate([False, True, False]):
            set_kill_switch(engine, halt, "test", group_id=run.group)
            d = decision(run, pd.Timestamp(ticks[2 + i].event_time), price=ticks[1].price)
            send(broker.bootstrap, run.topic, [d])
            wait_for(lambda: count(engine, OrderRow, account=run.account) == i + 1)  # noqa: B023
            statuses.append(
                orders(engine, run).set_index("decision_id").loc[d.id, ["status", "reason"]].tolist()
            )
    finally:
        stop.set()
        thread.join(10)
        set_kill_switch(engine, False, group_id=run.group)
    assert [s for s, _ in statuses] == ["accepted", "rejected", "accepted"]
    assert statuses[1][1] == "kill_switch: trading is halted"
    switches = read_rows(engine, AuditRow, "*")
    assert switches.detail.map(lambda d: json.loads(d)["group_id"]).eq(run.group).sum() >= 4


def test_flow_limits_and_the_execution_orders_flag(
    broker: EmbeddedBroker, settings: Settings, engine: Engine, run: Run
):
    flow, limits = f"flow-{run.group}", RiskLimits(**LIMITS | dict(max_position=50))
    writer = ConfigStore(engine, settings.profile, open_cache(settings), listen=False)  # publishes changes
    writer.register_flow(
        Flow(name=flow, symbols=(run.symbol,), feature_set="f", model="m", risk=limits), "ci"
    )
    ticks = market_events(synthetic_ticks(10, seed=7), run.symbol)
    send(broker.bootstrap, run.topic, ticks[:2])
    stop, spec = threading.Event(), run.spec.model_copy(update=dict(flow=flow))
    thread = threading.Thread(
        target=run_execution_service, args=(settings,), kwargs=dict(stop=stop.is_set, spec=spec)
    )
    thread.start()
    try:
        got = []
        for i, qty in enumerate([100, 10, 10]):
            if i == 2:
                writer.set_flag("execution.orders", "ci", enabled=False, flow=flow)
                time.sleep(0.3)  # the service's store drops its cached flag on the Redis message
            d = decision(run, pd.Timestamp(ticks[2 + i].event_time), qty=qty, price=ticks[1].price)
            send(broker.bootstrap, run.topic, [d])
            wait_for(lambda: count(engine, OrderRow, account=run.account) == i + 1)  # noqa: B023
            got.append(orders(engine, run).set_index("decision_id").loc[d.id, ["status", "reason"]].tolist())
    finally:
        stop.set()
        thread.join(10)
    assert got[0][0] == "rejected" and got[0][1].startswith("max_position")  # the flow's 50, not 300
    assert got[1][0] == "accepted"
    assert got[2] == ["rejected", "feature_flag: flag execution.orders off"]


def sample(port: int, name: str, **labels: str) -> float:
    "One sample from the `/metrics` page on `port` (0 when absent)."
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = (s for family in text_string_to_metric_families(body) for s in family.samples)
    return next((s.value for s in samples if s.name == name and s.labels == labels), 0.0)


def test_metrics_port_serves_orders_rejections_latency_and_ticks(
    broker: EmbeddedBroker, settings: Settings, engine: Engine, run: Run
) -> None:
    ticks = market_events(synthetic_ticks(5, seed=3), run.symbol)
    t = pd.Timestamp(ticks[1].event_time)
    good = decision(run, t + timedelta(microseconds=1), qty=1, price=ticks[1].price)
    risky = decision(run, t + timedelta(microseconds=2), qty=1, price=ticks[1].price * 1.5)
    port, stop = free_port(), threading.Event()
    limited = settings.model_copy(update=dict(risk=RiskLimits(**LIMITS)))
    thread = threading.Thread(
        target=run_execution_service,
        args=(limited,),
        kwargs=dict(stop=stop.is_set, spec=run.spec.model_copy(update=dict(capital=1e4)), metrics_port=port),
    )
    thread.start()
    try:
        wait_for(lambda: sample_or_none(port) is not None, 15)
        names = [("tradekit_orders_total", dict(status="accepted")),
                 ("tradekit_risk_rejections_total", dict(rule="price_band")),
                 ("tradekit_latency_seconds_count", dict(stage="decision_to_order")),
                 ("tradekit_ticks_total", dict(symbol=run.symbol))]  # fmt: skip
        before = [sample(port, n, **labels) for n, labels in names]
        send(broker.bootstrap, run.topic, [*ticks[:2], good, risky, *ticks[2:]])
        wait_for(lambda: sample(port, *names[3][:1], **names[3][1]) == 5, 30)
        moved = [sample(port, n, **labels) - b for (n, labels), b in zip(names, before, strict=True)]
        assert moved == [1.0, 1.0, 1.0, 5.0]
        assert sample(port, "tradekit_last_tick_timestamp_seconds", symbol=run.symbol) > 0
        pnl = positions_frame(engine, run.account, run.group).pnl.sum()  # the buy, marked at the last tick
        assert sample(port, "tradekit_equity", account=run.account) == pytest.approx(1e4 + pnl)
        drawdown = sample(port, "tradekit_drawdown", account=run.account)
        assert 0 <= drawdown < 0.01 and (pnl >= 0 or drawdown > 0)
    finally:
        stop.set()
        thread.join(15)


def sample_or_none(port: int) -> float | None:
    try:
        return sample(port, "tradekit_orders_total", status="accepted")
    except OSError:
        return None


def test_cli_execution_run_has_a_metrics_port_option() -> None:
    result = CliRunner().invoke(app, ["execution", "run", "--help"])
    assert result.exit_code == 0 and "--metrics-port" in result.output
