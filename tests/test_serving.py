"The decision service over real HTTP (`bentoml serve` in a subprocess); the stream worker on Tansu + Redis."

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from sqlalchemy import Engine

from tradekit.auth import create_api_key
from tradekit.config import Settings
from tradekit.data import synthetic_bars
from tradekit.events import (
    DECISIONS,
    RISK_ALERTS,
    BarClosed,
    DecisionMade,
    InvalidEvent,
    RiskAlertRaised,
    TickReceived,
    decode,
    publish,
)
from tradekit.execution.book import halted
from tradekit.features.sets import FeatureSet, FeatureSpec, FeatureStream
from tradekit.models.training import MemberSpec, TrainSpec, train
from tradekit.monitoring import QUARANTINED
from tradekit.registry import Stage, fingerprint, promote, register, rollback
from tradekit.services import ensure_topics, kafka_consumer, kafka_producer, open_cache
from tradekit.serving.bento import running_service, service_env
from tradekit.serving.engine import ServingSpec, StateCache, request_body
from tradekit.serving.http import create_app, open_serving
from tradekit.serving.stream import run_stream
from tradekit.settings_store import ConfigStore, Flow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
RUN = uuid.uuid4().hex[:8]
NAME = f"serve-{RUN}"  # the registry name the service serves
FS = FeatureSet(name=f"serve-{RUN}", features=(FeatureSpec(kind="rsi", params={"n": 3}),))  # fresh cache keys
SYMBOLS = ("SYN", "BAD", "HOT", "SSE", "FUZ", "STR")
BARS_ = synthetic_bars(600, seed=5)


def _register(engine: Engine, seed: int) -> int:
    spec = TrainSpec(
        name=NAME, feature_set=FS, n_splits=2,
        members=(MemberSpec(kind="xgb", params={"n_estimators": 5, "max_depth": 2, "n_jobs": 1}),),
    )  # fmt: skip
    res = train(spec, synthetic_bars(300, seed=seed))
    rec = register(engine, NAME, res.model, FS, res.metrics, res.params, fingerprint(BARS_), who="ci")
    return promote(engine, NAME, rec.version, Stage.production, "ci", "test").version


def _event(record: object) -> object:
    try:
        return decode(record.value)
    except InvalidEvent:
        return None


def body(symbol: str, i: int, j: int) -> dict:
    return request_body(symbol, BARS_.iloc[i:j])


@pytest.fixture(scope="module")
def keys(engine: Engine, bento_home: Path) -> dict[str, str]:
    _register(engine, seed=1)
    return {s: create_api_key(engine, f"{NAME}-{s}", [s]) for s in ("read", "trade", "admin")}


@pytest.fixture(scope="module")
def url(settings: Settings, keys: dict[str, str], bento_home: Path) -> Iterator[str]:
    spec = ServingSpec(model=NAME, symbols=SYMBOLS, reload_s=0.3)
    env = service_env(settings, spec) | {"OMP_NUM_THREADS": "1"}
    with running_service(env, timeout=90) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as c:
        yield c


def test_decide_features_and_metrics(client: httpx.Client, keys: dict[str, str]) -> None:
    trade, read = {"X-API-Key": keys["trade"]}, {"X-API-Key": keys["read"]}
    r = client.post("/decide", json=body("SYN", 0, 20), headers=trade)
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["model"], d["model_version"], d["feature_set"], d["warm"]) == (f"{NAME}:1", 1, FS.key, True)
    assert d["side"] in ("buy", "sell", "hold") and 0.5 <= d["confidence"] <= 1 and d["latency_ms"] > 0
    features = client.post("/features", json=body("SYN", 20, 21), headers=read).json()
    assert list(features) == FS.columns
    assert client.post("/decide", json=body("SYN", 20, 21), headers=trade).status_code == 200  # not consumed
    assert client.get("/model", headers=read).json()["model"] == f"{NAME}:1"
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").text
    for name in (
        "tradekit_decisions_total",
        "tradekit_latency_seconds_bucket",
        "tradekit_http_requests_total",
    ):
        assert name in metrics
    assert 'tradekit_cache_requests_total{level="lru",result="hit"}' in metrics
    assert "/decide" in client.get("/openapi.json").json()["paths"]


def test_bad_inputs_are_4xx_naming_the_field(client: httpx.Client, keys: dict[str, str]) -> None:
    trade = {"X-API-Key": keys["trade"], "content-type": "application/json"}
    assert client.post("/decide", json=body("BAD", 0, 5), headers=trade).status_code == 200
    bar = body("BAD", 5, 6)["bars"][0]
    cases = [
        ({"symbol": "NOPE", "bars": [bar]}, "symbol: unknown symbol 'NOPE'"),
        ({"symbol": "BAD", "bars": [bar | {"close": "high"}]}, "bars[0].close"),
        ({"symbol": "BAD", "bars": [bar | {"time": "2024-01-02T00:00:00"}]}, "bars[0].time"),
        ({"symbol": "BAD", "bars": [bar | {"volume": -1}]}, "bars[0].volume"),
        ({"symbol": "BAD", "bars": []}, "bars: "),
        ({"symbol": "BAD"}, "bars: Field required"),
        (body("BAD", 2, 3), "bars[0].time: "),  # older than the symbol's last bar: stale
    ]
    for payload, message in cases:
        r = client.post("/decide", json=payload, headers=trade)
        assert (r.status_code, message in r.json()["detail"]) == (422, True), (payload, r.text)
    nan = json.dumps({"symbol": "BAD", "bars": [bar]}).replace(str(bar["low"]), "NaN")
    r = client.post("/decide", content=nan, headers=trade)
    assert r.status_code == 422 and "bars[0].low" in r.json()["detail"], r.text
    assert client.post("/decide", content=b"{not json", headers=trade).status_code == 422


def test_api_keys_and_scopes(client: httpx.Client, keys: dict[str, str]) -> None:
    read, trade = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["trade"]}
    endpoints = [("POST", "/decide"), ("POST", "/features"), ("GET", "/model"), ("GET", "/decisions/stream"),
                 ("POST", "/admin/reload"), ("POST", "/admin/kill-switch")]  # fmt: skip
    for method, path in endpoints:
        r = client.request(method, path, json={})
        assert r.status_code == 401, (path, r.text)
    bad = client.post("/decide", json=body("SYN", 30, 31), headers={"X-API-Key": "tk_000000000000_nope"})
    assert bad.status_code == 401
    r = client.post("/decide", json=body("SYN", 30, 31), headers=read)
    assert r.status_code == 403 and "lacks scope 'trade'" in r.json()["detail"]
    assert client.post("/admin/reload", headers=trade).status_code == 403
    r = client.post("/admin/reload", headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200 and r.json()["model"].startswith(NAME)


def test_admin_kill_switch(client: httpx.Client, keys: dict[str, str], engine: Engine) -> None:
    group, admin = f"serving-test-{RUN}", {"X-API-Key": keys["admin"]}  # one group: other services run on
    assert (
        client.post("/admin/kill-switch", json={"on": True}, headers={"X-API-Key": keys["trade"]}).status_code
        == 403
    )
    r = client.post(
        "/admin/kill-switch", json={"on": True, "reason": "test", "group_id": group}, headers=admin
    )
    assert r.status_code == 200 and r.json()["on"] is True, r.text
    with engine.connect() as conn:
        assert halted(conn, group) and not halted(conn, f"{group}-other")
    assert (
        client.post("/admin/kill-switch", json={"on": False, "group_id": group}, headers=admin).status_code
        == 200
    )
    with engine.connect() as conn:
        assert not halted(conn, group)


def test_hot_reload_and_rollback_without_failed_requests(
    client: httpx.Client, keys: dict[str, str], engine: Engine
) -> None:
    trade = {"X-API-Key": keys["trade"]}
    assert client.post("/decide", json=body("HOT", 0, 10), headers=trade).status_code == 200
    seen: list[tuple[int, int]] = []
    stop, i = threading.Event(), [10]

    def hammer() -> None:
        while not stop.is_set() and i[0] < 590:
            r = client.post("/decide", json=body("HOT", i[0], i[0] + 1), headers=trade)
            seen.append((r.status_code, r.json().get("model_version", -1)))
            i[0] += 1

    def wait_for(version: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (not seen or seen[-1][1] != version):
            time.sleep(0.05)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        v2 = _register(engine, seed=2)
        wait_for(v2)
        rollback(engine, NAME, "ci", "test rollback")
        wait_for(1)
    finally:
        stop.set()
        t.join()
    versions = [v for _, v in seen]
    assert {c for c, _ in seen} == {200}, seen
    first2, last2 = versions.index(v2), len(versions) - 1 - versions[::-1].index(v2)
    assert set(versions[:first2]) == {1} and set(versions[first2 : last2 + 1]) == {v2}
    assert versions[-1] == 1 and set(versions[last2 + 1 :]) == {1}


def test_decision_stream_sse(url: str, client: httpx.Client, keys: dict[str, str]) -> None:
    got: list[dict] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", f"{url}/decisions/stream", headers={"X-API-Key": keys["read"]}, timeout=10
        ) as r:
            for line in r.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(10)
    r = client.post("/decide", json=body("SSE", 0, 10), headers={"X-API-Key": keys["trade"]})
    t.join(10)
    assert got and got[0]["symbol"] == "SSE" and got[0]["time"] == r.json()["time"]


def test_fuzz_openapi_no_5xx(url: str, keys: dict[str, str]) -> None:
    "Schemathesis cases for every operation but the admin ones and the endless stream: never a 5xx."
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json").exclude(path_regex="^/(admin|decisions)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/decide", "/features", "/model"}
    for op in operations:

        @given(case=op.as_strategy())
        @hsettings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_5xx(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, headers={"X-API-Key": keys["trade"]}, timeout=10)
            assert response.status_code < 500, (case.path, case.body, response.text)

        no_5xx()


def test_serving_flow_and_the_decide_flag(
    settings: Settings, engine: Engine, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    "TRADEKIT_SERVING_FLOW names model and symbols; `serving.decide` off (set by another store) is a 503."
    flow, trade = f"serve-{RUN}", {"X-API-Key": keys["trade"]}
    writer = ConfigStore(engine, settings.profile, open_cache(settings), listen=False)  # publishes changes
    writer.register_flow(Flow(name=flow, symbols=("FLA", "FLB"), feature_set=FS.name, model=NAME), "ci")
    monkeypatch.setenv("TRADEKIT_SERVING_FLOW", flow)
    app = create_app()
    app.state.serving = open_serving(settings)
    try:
        c = TestClient(app)
        info = c.get("/model", headers={"X-API-Key": keys["read"]}).json()
        assert (info["model"], info["symbols"]) == (f"{NAME}:1", ["FLA", "FLB"])
        assert c.post("/decide", json=body("FLA", 0, 20), headers=trade).status_code == 200
        assert c.post("/decide", json=body("SYN", 0, 20), headers=trade).status_code == 422  # not in the flow
        writer.set_flag("serving.decide", "ci", enabled=False, flow=flow)  # this flow only
        deadline = time.monotonic() + 5
        while (r := c.post("/decide", json=body("FLB", 0, 20), headers=trade)).status_code == 200:
            assert time.monotonic() < deadline, "the flag change did not reach the service"
            time.sleep(0.05)
        assert (r.status_code, r.json()["detail"]) == (503, "flag serving.decide is off for FLB")
    finally:
        app.state.serving.close()


def test_stream_worker_publishes_decisions_and_resumes_state(
    settings: Settings, keys: dict[str, str], broker: object
) -> None:
    topic, group, account = f"tradekit.test.bars.{RUN}", f"serving-{RUN}", f"acct-{RUN}"
    spec = ServingSpec(model=NAME, symbols=("STR",), band=0.0, account=account, reload_s=60)
    ensure_topics(settings.kafka_bootstrap, topic, DECISIONS)
    frame = synthetic_bars(60, seed=9, start="2025-01-02")
    producer = kafka_producer(settings.kafka_bootstrap)
    for t, row in frame.iterrows():
        cols = {c: float(row[c]) for c in ("open", "high", "low", "close", "volume")}
        publish(producer, BarClosed(event_time=t.to_pydatetime(), symbol="STR", **cols), topic)
    producer.flush()
    producer.close()
    first = run_stream(settings, spec, [topic], group, max_events=35, idle_timeout=15)
    second = run_stream(settings, spec, [topic], group, max_events=25, idle_timeout=15)  # a fresh LRU
    assert (first.handled, second.handled, first.dead_lettered + second.dead_lettered) == (35, 25, 0)
    cache = open_cache(settings)
    state = StateCache(cache).get(FS, "STR")
    stream = FeatureStream(FS)
    expected = [stream.update(r) for r in frame.to_dict("records")][-1]
    np.testing.assert_allclose(state.vector, expected)
    assert state.last == frame.index[-1]
    consumer = kafka_consumer(settings.kafka_bootstrap, DECISIONS, consumer_timeout_ms=3000)
    mine = [e for e in map(_event, consumer) if getattr(e, "account", None) == account]
    consumer.close()
    assert mine and {e.side for e in mine} <= {"buy", "sell"} and mine[0].model.startswith(NAME)
    assert (
        len({e.event_time for e in mine}) == len(mine)
        and pd.Timestamp(mine[-1].event_time) <= frame.index[-1]
    )


def test_stream_worker_quarantines_bad_ticks(
    settings: Settings, keys: dict[str, str], broker: object
) -> None:
    "A jump, a duplicate and an out-of-order tick among good ones: quarantined, alerted, no decision on them."
    topic, group, account = f"tradekit.test.ticks.{RUN}", f"serving-q-{RUN}", f"acct-q-{RUN}"
    spec = ServingSpec(model=NAME, symbols=("QGT",), band=0.0, account=account, reload_s=60)
    t0 = pd.Timestamp("2025-03-03", tz="UTC")

    def tick(i: int, price: float) -> TickReceived:
        at = (t0 + pd.Timedelta(seconds=i)).to_pydatetime()
        return TickReceived(event_time=at, symbol="QGT", price=price, size=1, side=0, bid=price, ask=price,
                            bid_size=1, ask_size=1)  # fmt: skip

    prices = BARS_.close.iloc[:30].tolist()
    good = [tick(i, p) for i, p in enumerate(prices[:15])]
    bad = [tick(15, prices[14] * 1.5), tick(14, prices[14]), tick(5, prices[14])]
    events = good + bad + [tick(16 + i, p) for i, p in enumerate(prices[15:])]
    reasons = ("price_jump", "duplicate", "out_of_order")
    before = [QUARANTINED.labels(reason=r)._value.get() for r in reasons]
    ensure_topics(settings.kafka_bootstrap, topic)
    producer = kafka_producer(settings.kafka_bootstrap)
    for e in events:
        publish(producer, e, topic)
    producer.flush()
    producer.close()
    stats = run_stream(settings, spec, [topic], group, max_events=len(events), idle_timeout=15)
    assert (stats.handled, stats.dead_lettered) == (len(events), 0)
    assert [QUARANTINED.labels(reason=r)._value.get() - b for r, b in zip(reasons, before, strict=True)] == [
        1
    ] * 3
    consumer = kafka_consumer(settings.kafka_bootstrap, DECISIONS, RISK_ALERTS, consumer_timeout_ms=2000)
    mine = [e for e in map(_event, consumer) if getattr(e, "account", None) == account]
    consumer.close()
    alerts = [e for e in mine if isinstance(e, RiskAlertRaised)]
    assert sorted(a.rule for a in alerts) == sorted(f"quality.{r}" for r in reasons)
    decisions = [e for e in mine if isinstance(e, DecisionMade)]
    times = [pd.Timestamp(e.event_time) for e in decisions]
    assert len(set(times)) == len(times) and prices[14] * 1.5 not in {e.price for e in decisions}
    assert max(times) > t0 + pd.Timedelta(seconds=16)  # the good ticks after the bad ones still decide
