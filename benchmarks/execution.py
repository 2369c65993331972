"""Execution: decision -> order latency, pipeline events/s and the raw broker, on two Kafka clients.

All in one run, on a Tansu broker this script starts on loopback and the PostgreSQL of the `[test]` profile:

1. raw broker: one message produced then consumed, round trip p50/p99, kafka-python and confluent-kafka
   (through `tradekit.kafka_client`), fetch wait 10 ms (the default) and 2 ms; consume rate of 50,000
   pre-produced decision events;
2. the execution service's handler alone (no Kafka): decisions and ticks straight into `ExecutionService` on
   PostgreSQL, `MAX_BATCH` per transaction, as `consume` batches them: the ceiling the database work sets;
3. the pipeline, the service in its own process as `tradekit execution run` runs it, once per
   `kafka_backend` setting, with `ExecutionSpec(fetch_wait_ms=...)` from `FETCH_WAIT_MS` and `LATENCY_RUNS`:
   - latency: 13,500 decisions published open loop at 100, 250 and 500/s, round robin over one symbol per
     partition (1 partition, and 8 with a shorter fetch wait); decision published -> the service
     publishes `OrderUpdated(accepted)` (both stamps are `producer_time`, set by `tradekit.events.publish`);
     beside it, the broker alone: the same decisions at the same rates to a consumer process that only polls
     (published -> polled), the floor the service's own work adds to;
   - throughput: 10,000 decisions and 2,000 ticks published at once, then consumed; events/s between the first
     and the last batch the service stored; then the same for 50,000 ticks alone (market data in, no orders);
     each once with one service on one partition (one symbol) and once with `PROCESSES` services in one group
     sharing `PARTITIONS` partitions (one symbol each), as `tradekit execution run` scales out, the group
     settled on a warm-up tick per partition before the backlog (`SETTLE_S`).

Run: `.venv/bin/python benchmarks/execution.py` (about ten minutes; its rows are deleted at the end).
"""

from __future__ import annotations

import faulthandler
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
from sqlalchemy import delete, func, select
from sqlmodel import Session

from tradekit.config import Settings, load_settings
from tradekit.data import synthetic_ticks
from tradekit.events import (
    MAX_BATCH,
    ORDER_UPDATES,
    DecisionMade,
    Event,
    ProcessedEvent,
    decode,
    encode,
    publish,
)
from tradekit.execution.book import AuditRow, FillRow, LastPriceRow, OrderRow, PositionRow
from tradekit.execution.service import (
    OUTPUT_TOPICS,
    ExecutionService,
    ExecutionSpec,
    market_events,
    run_execution_service,
)
from tradekit.kafka_client import BACKENDS, key_on, make_consumer, make_producer
from tradekit.services import EmbeddedBroker, ensure_topics, open_database

N_DECISIONS, N_TICKS, N_RAW, ROUND_TRIPS, N_TICKS_ONLY = 10_000, 2_000, 50_000, 300, 50_000
PROCESSES, PARTITIONS, IDLE_S = 2, 4, 10.0  # the scale-out rows: services sharing a topic of 4 partitions
# before the scale-out rows' backlog is published, the group reads a warm-up tick per partition, then settles
# this long: a member joining late makes Tansu rebalance (it holds a JoinGroup for half the 6 s session), a
# pause that fell inside the measured window (one run: 2 processes 33,224 ticks/s, 1 process 38,966)
SETTLE_S = 6.0
STUCK_S = 30.0  # the broker-alone consumer gives up after this long without a record
PHASES = ((100, 1_000), (250, 2_500), (500, N_DECISIONS))  # (decisions/s, decisions), open loop
LIMITS = dict(max_position=1e9, max_notional=1e12, max_orders_per_second=1_000_000, price_band=0.5)
# the service's fetch wait in the pipeline. Tansu 0.6's memory storage stops answering a caught-up consumer's
# waiting fetch once its partition holds more than ~2,000 records per ms of wait (confluent-kafka, 300
# records/s: 1 partition at 2 ms stuck at 4,200-4,900 records, at 10 ms fine at 6,000; 8 partitions at 2 ms
# fine at 12,000, at 1 ms stuck at 13,200). So 10 ms on one partition, and shorter waits on 8 partitions.
FETCH_WAIT_MS = {"confluent-kafka": 10, "kafka-python": 10}
LATENCY_RUNS = {
    "confluent-kafka": ((1, 10), (8, 2)),
    "kafka-python": ((1, 10),),
}  # (partitions, fetch wait ms)


def serve(backend: str, spec_json: str, max_events: str) -> None:
    "The service process: `run_execution_service` on the chosen client library (0 events: until idle)."
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a stuck service is
    settings = load_settings(risk=LIMITS, kafka_backend=backend)
    spec, n = ExecutionSpec.model_validate_json(spec_json), int(max_events) or None
    stats = run_execution_service(settings, n, spec=spec, idle_timeout=None if n else IDLE_S)
    print(json.dumps(asdict(stats)))


def drain(bootstrap: str, topic: str, wait_ms: str, warm_up: str, total: str) -> None:
    """The broker-alone process: poll `topic`, doing nothing else, until `total` records came or none for
    `STUCK_S` (Tansu stalls: it has no `consume` to lengthen its wait); when each record arrived, by id."""
    consumer = make_consumer(
        bootstrap, topic, group_id=f"drain-{topic}", backend="confluent-kafka", fetch_wait_ms=int(wait_ms)
    )
    arrived, last = [], time.monotonic()
    while len(arrived) < int(total) and time.monotonic() - last < STUCK_S:
        records = consumer.poll(200, 500)
        now = time.time()
        arrived += [(r.value, now) for r in records]
        if records:
            consumer.commit()
            last = time.monotonic()
        if len(arrived) == int(warm_up) and records:
            print("ready", flush=True)
    consumer.close()
    print(json.dumps({str(decode(v).id): t for v, t in arrived}))


# 1. the raw broker


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def round_trips(bootstrap: str, backend: str, fetch_wait_ms: int) -> tuple[float, float]:
    "p50/p99 ms of one message produced, flushed and consumed, `ROUND_TRIPS` times."
    topic = f"bench.rtt.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, topic)
    producer = make_producer(bootstrap, backend, linger_ms=0)
    consumer = make_consumer(
        bootstrap, topic, group_id=f"rtt-{topic}", backend=backend, fetch_wait_ms=fetch_wait_ms
    )
    send, flush, get = lambda v: producer.send(topic, v), producer.flush, lambda: consumer.poll(100, 1)
    send(b"warm-up"), flush()
    while not get():
        pass
    out = []
    for _ in range(ROUND_TRIPS):
        t0 = time.perf_counter()
        send(b"x" * 300), flush()
        while not get():
            pass
        out.append((time.perf_counter() - t0) * 1e3)
    consumer.close()
    producer.close()
    return percentiles(out)


def raw_ingest(bootstrap: str, backend: str, payloads: list[bytes]) -> tuple[float, float]:
    "msg/s consumed from the start of a topic holding `payloads`, without and with decoding them."
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, topic)
    producer = make_producer(bootstrap, "confluent-kafka", linger_ms=5)
    for p in payloads:
        producer.send(topic, p)
    producer.flush()
    rates = []
    for decoding in (False, True):
        t0 = time.perf_counter()
        consumer = make_consumer(bootstrap, backend=backend)
        consumer.assign(topic, {0: 0})  # no group to join: from connecting to the last record
        seen = 0
        while seen < len(payloads):
            records = consumer.poll(200, 500)
            for r in records:
                if decoding:
                    decode(r.value)
            seen += len(records)
        rates.append(len(payloads) / (time.perf_counter() - t0))
        consumer.close()
    return rates[0], rates[1]


# 2. and 3. the service


def decision(account: str, symbol: str, at: datetime, i: int, price: float) -> DecisionMade:
    return DecisionMade(event_time=at, symbol=symbol, account=account, side=("buy", "sell")[i % 2], qty=1.0,
                        price=price)  # fmt: skip


def stream(account: str, symbol: str, n_ticks: int, n_decisions: int) -> list[Event]:
    "Ticks with decisions spread evenly between them."
    ticks = market_events(synthetic_ticks(n_ticks, seed=11), symbol)
    per = n_decisions // n_ticks
    events: list[Event] = []
    for k, t in enumerate(ticks):
        events.append(t)
        at = [t.event_time + timedelta(microseconds=j + 1) for j in range(per)]
        events += [decision(account, symbol, at[j], k * per + j, t.price) for j in range(per)]
    return events


def handler_only(settings: Settings, events: list[Event], group: str) -> float:
    "events/s through `ExecutionService` straight into PostgreSQL, `MAX_BATCH` events per transaction."
    engine, service = open_database(settings), ExecutionService(settings, ExecutionSpec(group_id=group))
    t0 = time.perf_counter()
    for i in range(0, len(events), MAX_BATCH):
        with Session(engine) as session, session.begin():
            for e in events[i : i + MAX_BATCH]:
                service(e, session)
    rate = len(events) / (time.perf_counter() - t0)
    engine.dispose()
    return rate


def start_service(bootstrap: str, backend: str, spec: ExecutionSpec, max_events: int) -> subprocess.Popen:
    env = {**os.environ, "TRADEKIT_KAFKA_BOOTSTRAP": bootstrap}
    args = [sys.executable, __file__, "serve", backend, spec.model_dump_json(), str(max_events)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)


def finish(child: subprocess.Popen, timeout: float = 300.0) -> str:
    "The service's last output line once it stops; `RuntimeError` (and the service killed) after `timeout` s."
    try:
        return child.communicate(timeout=timeout)[0].strip().splitlines()[-1]
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGUSR1)  # its stacks to stderr: where it is stuck
        time.sleep(1)
        child.kill()
        raise RuntimeError(f"the service stalled (not done after {timeout:g} s)") from None


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the service did not finish in time")
        time.sleep(0.05)


def stored(engine, group: str) -> int:
    "The events `group` has recorded as processed."
    p = ProcessedEvent.__table__
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(p.c.consumer_group == group)).scalar()


def count_orders(engine, account: str) -> int:
    t = OrderRow.__table__
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t).where(t.c.account == account)).scalar()


def order_updates_after(bootstrap: str, start: int, account: str, n: int) -> list:
    "The first `n` accepted `OrderUpdated` of `account` on `ORDER_UPDATES` from offset `start` (by id)."
    consumer = make_consumer(bootstrap, backend="confluent-kafka")
    consumer.assign(ORDER_UPDATES, {0: start})
    found, deadline = {}, time.monotonic() + 60
    while len(found) < n and time.monotonic() < deadline:
        for r in consumer.poll(500, 1000):
            if (e := decode(r.value)).account == account and e.status == "accepted":
                found[e.id] = e
    consumer.close()
    return list(found.values())


def latency(
    settings: Settings, backend: str, tag: str, partitions: int = 1, wait_ms: int | None = None
) -> list[tuple[int, float, float, int]]:
    """Per phase: rate, p50 and p99 ms, count: decision published -> its order accepted and published. The
    decisions go round robin to `partitions` symbols, one per partition of the topic."""
    bootstrap, account = settings.kafka_bootstrap, f"bench-lat-{tag}"
    topic = f"bench.execution.latency.v1.{tag}"
    wait_ms = wait_ms or FETCH_WAIT_MS[backend]
    spec = ExecutionSpec(group_id=account, decisions_topic=topic, ticks_topic=topic, fetch_wait_ms=wait_ms)
    ensure_topics(bootstrap, topic, partitions=partitions)
    ensure_topics(bootstrap, *OUTPUT_TOPICS)
    probe = make_consumer(bootstrap, backend="confluent-kafka")
    start = probe.end_offsets(ORDER_UPDATES, [0])[0]
    probe.close()
    engine, producer = open_database(settings), make_producer(bootstrap, "confluent-kafka", linger_ms=0)
    prices = {}
    for symbol in (key_on(p, partitions, f"L{tag}") for p in range(partitions)):
        tick = market_events(synthetic_ticks(1), symbol)[0]
        prices[symbol] = tick.price
        publish(producer, msgspec.structs.replace(tick, event_time=datetime.now(UTC)), topic)
        publish(producer, decision(account, symbol, datetime.now(UTC), 0, tick.price), topic)  # warm-up
    producer.flush()
    child = start_service(bootstrap, backend, spec, 2 * partitions + sum(n for _, n in PHASES))
    wait_until(lambda: count_orders(engine, account) == partitions)
    phases = [paced(producer, topic, account, prices, rate, n) for rate, n in PHASES]
    finish(child)
    updates = order_updates_after(bootstrap, start, account, partitions + sum(n for _, n in PHASES))
    accepted = {u.order_id: u.producer_time for u in updates}
    out = []
    for (rate, _), sent in zip(PHASES, phases, strict=True):
        ms = [(accepted[uuid.uuid5(d, "order")] - t).total_seconds() * 1e3 for d, t in sent.items()]
        out.append((rate, *percentiles(ms), len(ms)))
    engine.dispose()
    return out


def broker_alone(
    settings: Settings, tag: str, partitions: int, wait_ms: int
) -> list[tuple[float, float, int]]:
    """Per phase, p50 and p99 ms from a decision published to its arrival in a consumer that only polls, and
    how many never arrived."""
    bootstrap, topic = settings.kafka_bootstrap, f"bench.execution.broker.v1.{tag}"
    ensure_topics(bootstrap, topic, partitions=partitions)
    producer, now = make_producer(bootstrap, "confluent-kafka", linger_ms=0), datetime.now(UTC)
    prices = {key_on(p, partitions, f"B{tag}"): 100.0 for p in range(partitions)}
    for i, symbol in enumerate(prices):
        publish(producer, decision("bench-broker", symbol, now, i, 100.0), topic)  # warm-up
    producer.flush()
    total = partitions + sum(n for _, n in PHASES)
    args = [sys.executable, __file__, "drain", bootstrap, topic, str(wait_ms), str(partitions), str(total)]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    child.stdout.readline()  # "ready": it has joined and read the warm-up
    phases = [paced(producer, topic, "bench-broker", prices, rate, n) for rate, n in PHASES]
    arrived, out = json.loads(finish(child)), []
    for sent in phases:
        ms = [(arrived[str(d)] - t.timestamp()) * 1e3 for d, t in sent.items() if str(d) in arrived]
        out.append((*(percentiles(ms) if ms else (np.nan, np.nan)), len(sent) - len(ms)))
    return out


def paced(producer: Any, topic: str, account: str, prices: dict[str, float], rate: int, n: int):
    "Publish `n` decisions at `rate` per second, open loop, round robin over `prices`' symbols; ids, times."
    sent, t0, symbols = {}, time.perf_counter(), list(prices)
    for i in range(n):
        if (wait := t0 + i / rate - time.perf_counter()) > 0:
            time.sleep(wait)
        symbol = symbols[i % len(symbols)]
        d = decision(account, symbol, datetime.now(UTC), i, prices[symbol])
        sent[d.id] = datetime.now(UTC)
        publish(producer, d, topic)
    producer.flush()
    time.sleep(1.0)  # let the service drain before the next phase
    return sent


def throughput(
    settings: Settings, backend: str, tag: str, n_ticks: int = N_TICKS, n_decisions: int = N_DECISIONS,
    processes: int = 1,
) -> tuple[float, int, int, str]:  # fmt: skip
    """events/s through `processes` services (ticks and decisions published at once when they are up), the
    orders and fills they made, and how the events were split between them. One process reads one partition
    and one symbol; more share `PARTITIONS` partitions, one symbol (and account) each, in a settled group."""
    bootstrap, group = settings.kafka_bootstrap, f"bench-thr-{tag}"
    topic = f"bench.execution.throughput.v1.{tag}"
    spec = ExecutionSpec(
        group_id=group, decisions_topic=topic, ticks_topic=topic, fetch_wait_ms=FETCH_WAIT_MS[backend]
    )
    parts = 1 if processes == 1 else PARTITIONS
    names = [key_on(p, parts, f"T{tag}") for p in range(parts)]
    streams = [stream(f"bench-thr-{tag}-{n}", n, n_ticks // parts, n_decisions // parts) for n in names]
    events = [e for batch in itertools.zip_longest(*streams) for e in batch if e is not None]
    ensure_topics(bootstrap, topic, partitions=parts)
    ensure_topics(bootstrap, *OUTPUT_TOPICS)
    producer = make_producer(bootstrap, "confluent-kafka", linger_ms=5)
    engine, p, o = open_database(settings), ProcessedEvent.__table__, OrderRow.__table__
    mine = p.c.consumer_group == group
    backlog = [(encode(e), e.symbol.encode()) for e in events]  # encoded ahead: a short burst to publish
    for name in names:  # a warm-up tick per partition, then a settled group (see SETTLE_S)
        publish(producer, market_events(synthetic_ticks(1), name)[0], topic)
    producer.flush()
    children = [start_service(bootstrap, backend, spec, 0) for _ in range(processes)]
    wait_until(lambda: stored(engine, group) == parts)
    time.sleep(SETTLE_S)
    start = datetime.now(UTC)
    for value, key in backlog:
        producer.send(topic, value, key)
    producer.flush()
    split = "/".join(str(json.loads(finish(child))["handled"]) for child in children)
    batches = (
        select(p.c.processed_at, func.count())
        .where(mine, p.c.processed_at >= start)
        .group_by(p.c.processed_at)
    )
    with engine.connect() as conn:
        rows = sorted(conn.execute(batches).all())
        orders, fills = (
            conn.execute(select(func.count()).where(t.c.account.like(f"bench-thr-{tag}-%"))).scalar()
            for t in (o, FillRow.__table__)
        )
    window = (rows[-1][0] - rows[0][0]).total_seconds()  # the first batch stored to the start of the last
    engine.dispose()
    return sum(n for _, n in rows[:-1]) / window, orders, fills, split


def cleanup(settings: Settings, tag: str) -> None:
    engine = open_database(settings)
    with engine.begin() as conn:
        for model in (OrderRow, FillRow, PositionRow, AuditRow):
            conn.execute(delete(model.__table__).where(model.__table__.c.account.like(f"bench-%{tag}%")))
        conn.execute(
            delete(LastPriceRow.__table__).where(LastPriceRow.__table__.c.group_id.like(f"bench-%{tag}%"))
        )
        p = ProcessedEvent.__table__
        conn.execute(delete(p).where(p.c.consumer_group.like(f"bench-%{tag}%")))
    engine.dispose()


def main() -> None:
    os.environ.setdefault("TRADEKIT_PROFILE", "test")
    os.environ.setdefault("TRADEKIT_SETTINGS", os.path.join(os.path.dirname(__file__), "..", "settings.ini"))
    tag = uuid.uuid4().hex[:8]
    with EmbeddedBroker() as broker:
        settings = load_settings(kafka_bootstrap=broker.bootstrap, risk=LIMITS)
        print(f"# Execution benchmarks ({os.cpu_count()} cores, Tansu on loopback, {settings.database})\n")
        try:
            report(settings, tag)
        finally:
            cleanup(settings, tag)


def report(settings: Settings, tag: str) -> None:
    bootstrap = settings.kafka_bootstrap
    print(f"## Raw broker: produce -> consume round trip, {ROUND_TRIPS} messages of 300 B\n")
    print("| client | fetch wait | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for backend in BACKENDS:
        for wait in (10, 2):
            p50, p99 = round_trips(bootstrap, backend, wait)
            print(f"| {backend} | {wait} ms | {p50:.2f} | {p99:.2f} |")
    payloads = [encode(decision("a", "S", datetime.now(UTC), i, 100.0)) for i in range(N_RAW)]
    print(
        f"\n## Raw ingest: {N_RAW:,} DecisionMade events ({len(payloads[0])} B) from the start of a topic\n"
    )
    print("| client | consume msg/s | consume + decode msg/s |\n|---|---:|---:|")
    for backend in BACKENDS:
        plain, decoded = raw_ingest(bootstrap, backend, payloads)
        print(f"| {backend} | {plain:,.0f} | {decoded:,.0f} |")
    events = stream(f"bench-h-{tag}", f"H{tag}", N_TICKS, N_DECISIONS)
    print(f"\n## The service's handler alone (no Kafka), {len(events):,} events into PostgreSQL\n")
    print(f"{handler_only(settings, events, f'bench-h-{tag}'):,.0f} events/s")
    print("\n## Pipeline: the service in its own process\n")
    print(
        "| client | partitions | fetch wait | decisions/s | decisions | decision -> order p50 ms | p99 ms "
        "| broker alone p50 ms | p99 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    thr = []
    for i, backend in enumerate(reversed(BACKENDS)):  # confluent-kafka first
        try:
            for parts, wait in LATENCY_RUNS[backend]:
                floor = broker_alone(settings, f"{parts}{i}{tag}", parts, wait)
                rows = latency(settings, backend, f"{parts}{i}{tag}", parts, wait)
                for (rate, p50, p99, n), (b50, b99, lost) in zip(rows, floor, strict=True):
                    stalled = f" ({lost:,} never came)" if lost else ""
                    print(
                        f"| {backend} | {parts} | {wait} ms | {rate} | {n:,} | {p50:.2f} | {p99:.2f} "
                        f"| {b50:.2f} | {b99:.2f}{stalled} |"
                    )
            for procs in (1, PROCESSES):
                mixed, ticks_only = (
                    throughput(settings, backend, f"{procs}{i}{tag}", processes=procs),
                    throughput(settings, backend, f"t{procs}{i}{tag}", N_TICKS_ONLY, 0, processes=procs),
                )
                thr += [(backend, procs, f"{N_DECISIONS:,} decisions + {N_TICKS:,} ticks", *mixed)]
                thr += [(backend, procs, f"{N_TICKS_ONLY:,} ticks", *ticks_only)]
        except RuntimeError as e:
            print(f"| {backend} | | | {e} | | | |")
        sys.stdout.flush()
    print(
        f"\nA backlog published at once to services already up and settled (PostgreSQL); processes > 1 share "
        f"{PARTITIONS} partitions\n"
    )
    print("| client | processes | events | sustained events/s | handled per process | orders | fills |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for backend, procs, what, rate, orders, fills, split in thr:
        print(f"| {backend} | {procs} | {what} | {rate:,.0f} | {split} | {orders:,} | {fills:,} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(*sys.argv[2:5])
    elif sys.argv[1:2] == ["drain"]:
        drain(*sys.argv[2:7])
    else:
        main()
