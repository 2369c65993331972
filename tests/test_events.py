"""Events on the embedded Tansu broker and the real PostgreSQL: effectively-once consumption, the dead-letter
topic, a consumer SIGKILLed between its database commit and its offset commit, replay and file publishing."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from kafka.admin import KafkaAdminClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, delete, func, insert
from sqlmodel import Field, Session, SQLModel, select

from tradekit.config import Settings
from tradekit.data import synthetic_bars, synthetic_ticks
from tradekit.events import (
    DLQ,
    TICKS,
    TOPICS,
    Event,
    ProcessedEvent,
    TickReceived,
    consume,
    decode,
    encode,
    prune_processed,
    publish,
    publish_file,
    replay,
)
from tradekit.kafka_client import make_consumer, make_producer
from tradekit.services import EmbeddedBroker, ensure_topics, kafka_consumer, kafka_producer

HERE = Path(__file__).resolve().parent


class TickEffect(SQLModel, table=True):
    "What the test handler writes: one row per tick it applies."

    __tablename__ = "test_event_effects"
    __table_args__ = {"extend_existing": True}
    id: int | None = Field(default=None, primary_key=True)
    symbol: str = Field(index=True)
    event_id: uuid.UUID
    price: float


def record_tick(event: Event, session: Session) -> None:
    "The handler: refuse the symbol REJECT, otherwise write one effect row."
    if event.symbol == "REJECT":
        raise ValueError("symbol REJECT is not tradable")
    session.add(TickEffect(symbol=event.symbol, event_id=event.id, price=event.price))


def tick(symbol: str, i: int = 0) -> TickReceived:
    ts = synthetic_ticks(1).index[0] + timedelta(seconds=i)
    return TickReceived(
        event_time=ts.to_pydatetime(), symbol=symbol, price=100 + i, size=1, side=1, bid=99, ask=101,
        bid_size=1, ask_size=1,
    )  # fmt: skip


def effects(engine: Engine, symbol: str) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(TickEffect).where(TickEffect.symbol == symbol)).one()


def fresh() -> tuple[str, str, str]:
    "A topic, a consumer group and a symbol no other test uses."
    tag = uuid.uuid4().hex[:8]
    return f"tradekit.test.ticks.v1.{tag}", f"g-{tag}", f"S{tag}"


def committed(bootstrap: str, group: str) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {tp.topic: om.offset for tp, om in admin.list_group_offsets(group)[group].items()}
    finally:
        admin.close()


def send_raw(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    ensure_topics(bootstrap, topic)
    producer = kafka_producer(bootstrap)
    for p in payloads:
        producer.send(topic, p, key=b"k")
    producer.flush()
    producer.close()


def test_produce_consume_persist_commit(broker: EmbeddedBroker, engine: Engine) -> None:
    topic, group, symbol = fresh()
    send_raw(broker.bootstrap, topic, [encode(tick(symbol, i)) for i in range(5)])
    stats = consume(broker.bootstrap, [topic], group, record_tick, engine, max_events=5)
    assert (stats.handled, stats.duplicates, stats.dead_lettered) == (5, 0, 0)
    assert effects(engine, symbol) == 5
    assert committed(broker.bootstrap, group) == {topic: 5}


def test_bad_records_go_to_the_dlq_and_the_stream_goes_on(broker: EmbeddedBroker, engine: Engine) -> None:
    topic, group, symbol = fresh()
    dlq = f"{DLQ}.{group}"
    good = json.loads(encode(tick(symbol)))
    payloads = [
        encode(tick(symbol, 1)),
        b"\x00garbage",
        json.dumps({**good, "type": "TickTeleported"}).encode(),
        json.dumps({**good, "version": 2}).encode(),
        encode(tick("REJECT", 2)),
        encode(tick(symbol, 3)),
    ]
    send_raw(broker.bootstrap, topic, payloads)
    stats = consume(broker.bootstrap, [topic], group, record_tick, engine, max_events=6, dlq_topic=dlq)
    assert (stats.handled, stats.dead_lettered) == (2, 4)
    assert effects(engine, symbol) == 2
    assert committed(broker.bootstrap, group) == {topic: 6}

    reader = kafka_consumer(broker.bootstrap, dlq, consumer_timeout_ms=5000)
    dead = [next(reader) for _ in range(4)]
    reader.close()
    headers = [{k: v.decode() for k, v in r.headers} for r in dead]
    assert [h["dlq.reason"] for h in headers] == ["malformed", "unknown_type", "unknown_version", "rejected"]
    assert [(h["dlq.topic"], h["dlq.offset"]) for h in headers] == [(topic, str(i)) for i in (1, 2, 3, 4)]
    assert [r.value for r in dead] == payloads[1:5]
    assert "not tradable" in headers[3]["dlq.error"] and "TickTeleported" in headers[1]["dlq.error"]


def test_duplicate_event_ids_are_applied_once(broker: EmbeddedBroker, engine: Engine) -> None:
    topic, group, symbol = fresh()
    once, other = tick(symbol, 1), tick(symbol, 2)
    ensure_topics(broker.bootstrap, topic)
    producer = kafka_producer(broker.bootstrap)
    for event in (once, once, other, once):  # a producer retry, a replayed record
        publish(producer, event, topic)
    producer.flush()
    stats = consume(broker.bootstrap, [topic], group, record_tick, engine, max_events=4)
    assert (stats.handled, stats.duplicates) == (2, 2)
    assert effects(engine, symbol) == 2


def test_stop_ends_a_running_consumer(broker: EmbeddedBroker, engine: Engine) -> None:
    topic, group, symbol = fresh()
    send_raw(broker.bootstrap, topic, [encode(tick(symbol, i)) for i in range(3)])
    stop, result = threading.Event(), {}

    def run() -> None:
        result["stats"] = consume(broker.bootstrap, [topic], group, record_tick, engine, stop=stop.is_set)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 20
    while effects(engine, symbol) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and result["stats"].handled == 3
    assert committed(broker.bootstrap, group) == {topic: 3}


CHILD = """
import sys, time
sys.path.insert(0, {here!r})
from sqlalchemy import create_engine
from test_events import record_tick
from tradekit.events import consume
from tradekit.kafka_client import KafkaPythonConsumer

KafkaPythonConsumer.commit = lambda self, *a, **k: time.sleep(120)  # stored, stuck before the offset commit
consume({bootstrap!r}, [{topic!r}], {group!r}, record_tick, create_engine({db!r}), max_events={n})
"""


def test_consumer_killed_before_offset_commit_redelivers_and_dedupes(
    broker: EmbeddedBroker, engine: Engine, settings: Settings
) -> None:
    topic, group, symbol = fresh()
    n = 5
    send_raw(broker.bootstrap, topic, [encode(tick(symbol, i)) for i in range(n)])
    code = CHILD.format(
        here=str(HERE), bootstrap=broker.bootstrap, topic=topic, group=group, db=settings.database, n=n
    )
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    try:
        deadline = time.monotonic() + 40
        while effects(engine, symbol) < n and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert effects(engine, symbol) == n, "the child did not persist its effects"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert committed(broker.bootstrap, group).get(topic, -1) <= 0  # nothing committed

    stats = consume(broker.bootstrap, [topic], group, record_tick, engine, max_events=n)
    assert (stats.handled, stats.duplicates) == (0, n)  # every event re-delivered, none applied again
    assert effects(engine, symbol) == n
    assert committed(broker.bootstrap, group) == {topic: n}


def test_publish_file_then_replay_from_a_time(broker: EmbeddedBroker, tmp_path: Path) -> None:
    topic = f"tradekit.test.bars.v1.{uuid.uuid4().hex[:8]}"
    bars = synthetic_bars(40, seed=3)
    bars.to_csv(tmp_path / "bars.csv")
    assert publish_file(broker.bootstrap, tmp_path / "bars.csv", topic, kind="bars") == 40

    seen: list[Event] = []
    since, until = bars.index[25].to_pydatetime(), bars.index[35].to_pydatetime()
    assert replay(broker.bootstrap, topic, since, seen.append) == 15
    assert [e.close for e in seen] == pytest.approx(bars.close.iloc[25:].tolist())
    assert all(e.symbol == "SYN" and e.producer_time >= e.event_time for e in seen)
    assert replay(broker.bootstrap, topic, since, seen.append, until=until) == 10
    later = bars.index[-1].to_pydatetime() + timedelta(days=1)
    assert replay(broker.bootstrap, topic, later, seen.append) == 0
    with pytest.raises(ValueError, match="does not exist"):
        replay(broker.bootstrap, f"{topic}.missing", since, seen.append)


def test_publish_file_paced_by_speed(broker: EmbeddedBroker, tmp_path: Path) -> None:
    topic = f"tradekit.test.ticks.v1.{uuid.uuid4().hex[:8]}"
    ticks = synthetic_ticks(20, seed=2)
    ticks.to_parquet(tmp_path / "ticks.parquet")
    span = (ticks.index[-1] - ticks.index[0]).total_seconds()
    t0 = time.monotonic()
    assert (
        publish_file(broker.bootstrap, tmp_path / "ticks.parquet", topic, speed=span / 1.0, symbol="X") == 20
    )
    elapsed = time.monotonic() - t0
    assert 0.95 <= elapsed < 3.0, elapsed  # ~1 s of event time at span/1 speed, plus connecting

    seen: list[Event] = []
    assert replay(broker.bootstrap, topic, ticks.index[0].to_pydatetime(), seen.append) == 20
    assert [e.price for e in seen] == ticks.price.tolist()
    gaps = [(b.producer_time - a.producer_time).total_seconds() for a, b in zip(seen, seen[1:], strict=False)]
    assert sum(gaps) == pytest.approx(1.0, abs=0.15)
    assert (
        msgspec.json.decode(encode(seen[0]))["type"] == "TickReceived" and decode(encode(seen[0])) == seen[0]
    )


def test_confluent_backend_publishes_replays_and_consumes(
    broker: EmbeddedBroker, engine: Engine, tmp_path: Path
):
    "The same calls on confluent-kafka: a file in, a replay from a time, a consumer applying each tick once."
    topic, group, symbol = fresh()
    synthetic_ticks(30, seed=4).to_csv(tmp_path / "ticks.csv")
    backend = "confluent-kafka"
    assert publish_file(broker.bootstrap, tmp_path / "ticks.csv", topic, symbol=symbol, backend=backend) == 30
    seen: list[Event] = []
    since = synthetic_ticks(30, seed=4).index[20].to_pydatetime()
    assert replay(broker.bootstrap, topic, since, seen.append, backend=backend) == 10
    with pytest.raises(ValueError, match="does not exist"):
        replay(broker.bootstrap, f"{topic}.missing", since, seen.append, backend=backend)
    stats = consume(broker.bootstrap, [topic], group, record_tick, engine, max_events=30, backend=backend)
    assert (stats.handled, stats.duplicates, effects(engine, symbol)) == (30, 0, 30)
    assert committed(broker.bootstrap, group) == {topic: 30}


def test_consume_takes_the_callers_consumer_and_producer(broker: EmbeddedBroker, engine: Engine) -> None:
    topic, group, symbol = fresh()
    send_raw(broker.bootstrap, topic, [encode(tick(symbol, i)) for i in range(3)] + [b"{bad"])
    ensure_topics(broker.bootstrap, DLQ)
    consumer = make_consumer(
        broker.bootstrap, topic, group_id=group, backend="confluent-kafka", fetch_wait_ms=1
    )
    producer = make_producer(broker.bootstrap, "confluent-kafka")
    try:
        stats = consume(
            broker.bootstrap, topic, group, record_tick, engine, 4, consumer=consumer, producer=producer
        )
        assert (stats.handled, stats.dead_lettered) == (3, 1)
        producer.send(topic, encode(tick(symbol, 9)))  # both still open: the caller owns them
        producer.flush()
    finally:
        consumer.close()
    assert effects(engine, symbol) == 3


@pytest.mark.parametrize("backend", ["kafka-python", "confluent-kafka"])
def test_consume_exports_consumer_lag(broker: EmbeddedBroker, engine: Engine, backend: str) -> None:
    "CONSUMER_LAG{topic, group} after a run: the records left behind, then 0 once caught up."
    topic, group, symbol = fresh()
    ensure_topics(broker.bootstrap, topic)
    producer = kafka_producer(broker.bootstrap)
    # one batch: Tansu's offsets request would say 1; the fetch responses' watermark says 6
    for i in range(6):
        producer.send(topic, encode(tick(symbol, i)))
    producer.flush()
    producer.close()
    consumer = make_consumer(broker.bootstrap, topic, group_id=group, backend=backend)
    lag = lambda: REGISTRY.get_sample_value("tradekit_kafka_consumer_lag", {"topic": topic, "group": group})
    try:
        consume(broker.bootstrap, topic, group, record_tick, engine, 2, consumer=consumer, backend=backend)
        assert lag() == 4
        consume(broker.bootstrap, topic, group, record_tick, engine, 4, consumer=consumer, backend=backend)
        assert lag() == 0
    finally:
        consumer.close()
    assert effects(engine, symbol) == 6


def test_prune_processed_keeps_the_redelivery_window(engine: Engine) -> None:
    group = f"g-prune-{uuid.uuid4().hex[:8]}"
    now, t = datetime.now(UTC), ProcessedEvent.__table__
    ages = [timedelta(days=d) for d in (30, 20, 10, 0)]
    ids = [uuid.uuid4() for _ in ages]
    rows = [dict(consumer_group=group, event_id=i, event_type="TickReceived", processed_at=now - a)
            for i, a in zip(ids, ages, strict=True)]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(t), rows)
    assert prune_processed(engine, group, older_than=timedelta(days=5), keep=3) == 1  # the 30-day one
    assert prune_processed(engine, group, older_than=timedelta(days=5)) == 2
    with engine.begin() as conn:  # an id inside the window is still skipped when it comes again
        left = conn.execute(select(t.c.event_id).where(t.c.consumer_group == group)).scalars().all()
        assert left == [ids[3]]
        conn.execute(delete(t).where(t.c.consumer_group == group))


def test_cli_events_commands_on_the_confluent_backend(broker: EmbeddedBroker, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tradekit.cli import app

    synthetic_ticks(12, seed=6).assign(symbol="SYN").to_csv(tmp_path / "ticks.csv")
    topic = f"tradekit.test.ticks.v1.{uuid.uuid4().hex[:8]}"
    env = {"TRADEKIT_KAFKA_BOOTSTRAP": broker.bootstrap, "TRADEKIT_KAFKA_BACKEND": "confluent-kafka"}
    r = CliRunner().invoke(
        app, ["events", "publish-file", str(tmp_path / "ticks.csv"), "--topic", topic], env=env
    )
    assert r.exit_code == 0 and "published 12 ticks" in r.output, r.output
    r = CliRunner().invoke(app, ["events", "replay", "--topic", topic, "--from", "2000-01-01"], env=env)
    assert r.exit_code == 0 and r.output.count('"type"') == 12 and "12 events from" in r.output, r.output


def test_cli_create_topics_makes_the_missing_ones_with_the_partitions_asked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tradekit.cli import app

    with EmbeddedBroker(log_file=tmp_path / "tansu.log") as fresh:  # no topics yet
        env = {"TRADEKIT_KAFKA_BOOTSTRAP": fresh.bootstrap}
        ensure_topics(fresh.bootstrap, TICKS)  # one partition, as a consumer would have made it
        r = CliRunner().invoke(app, ["events", "create-topics", "--partitions", "3"], env=env)
        assert r.exit_code == 0, r.output
        rows = dict(line.split()[1:4:2] for line in r.output.splitlines() if "tradekit." in line)
        assert rows == {t: "1" if t == TICKS else "3" for t in TOPICS}
        assert "ticks and decisions can reach different execution processes" in r.output
        r = CliRunner().invoke(app, ["events", "create-topics", "--partitions", "0"], env=env)
        assert r.exit_code == 2 and "partitions" in r.output, r.output
