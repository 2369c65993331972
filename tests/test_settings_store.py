"The settings store on the real PostgreSQL: audited history, and cache invalidation over Redis pub/sub."

import time
import uuid
from collections.abc import Callable

import redis
from sqlalchemy import Engine
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.config import Settings
from tradekit.services import Services
from tradekit.settings_store import ConfigStore, Flow


def _env() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def _eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_history_records_author_time_and_previous(engine: Engine) -> None:
    store = ConfigStore(engine, _env())
    for author, value in (("ana", {"max": 1}), ("ben", {"max": 2}), ("cy", [3])):
        store.set("risk.overrides", value, author=author)
    changes = store.history("risk.overrides")
    assert [(c.version, c.author, c.previous) for c in changes] == [
        (1, "ana", None),
        (2, "ben", '{"max": 1}'),
        (3, "cy", '{"max": 2}'),
    ]
    assert all(c.changed_at is not None for c in changes) and store.get("risk.overrides") == [3]


def test_change_invalidates_other_processes_over_redis(engine: Engine, settings: Settings) -> None:
    env = _env()
    client = redis.Redis.from_url(settings.redis_url)
    with ConfigStore(engine, env, client, ttl=600) as reader, ConfigStore(engine, env, client) as writer:
        writer.set("serving.max_batch", 64, author="ana")
        writer.register_flow(Flow(name="f1", symbols=("BTC",), feature_set="core", model="m"), author="ana")
        assert reader.get("serving.max_batch") == 64 and reader.get_flow("f1").model == "m"
        writer.set("serving.max_batch", 32, author="ben")
        assert _eventually(lambda: reader.get("serving.max_batch") == 32)  # ttl is 600 s: pub/sub did it
        writer.set_flag("shadow", author="ana", enabled=False)
        assert not reader.flag_enabled("shadow", "acct")
        writer.set_flag("shadow", author="ana")
        assert _eventually(lambda: reader.flag_enabled("shadow", "acct"))


def test_without_redis_other_stores_catch_up_after_ttl(engine: Engine) -> None:
    env = _env()
    reader, writer = ConfigStore(engine, env, ttl=0.2), ConfigStore(engine, env)
    writer.set("k", 1, author="ana")
    assert reader.get("k") == 1
    writer.set("k", 2, author="ana")
    assert reader.get("k") == 1  # cached
    time.sleep(0.25)
    assert reader.get("k") == 2


def test_cli_config_set_get_history_reaches_running_store(engine: Engine, settings: Settings) -> None:
    key, env = f"cli.{uuid.uuid4().hex[:8]}", {"TRADEKIT_PROFILE": "test"}
    runner = CliRunner()
    with ConfigStore(engine, "test", redis.Redis.from_url(settings.redis_url), ttl=600) as running:
        r = runner.invoke(app, ["config", "set", key, "5", "--author", "ana"], env=env)
        assert r.exit_code == 0 and "(version 1)" in r.output, r.output
        assert running.get(key) == 5
        assert (
            runner.invoke(app, ["config", "set", key, '{"max": 6}', "--author", "ben"], env=env).exit_code
            == 0
        )
        assert _eventually(lambda: running.get(key) == {"max": 6})  # the CLI published the change
    r = runner.invoke(app, ["config", "get", key], env=env)
    assert r.exit_code == 0 and '"max": 6' in r.output
    r = runner.invoke(app, ["config", "history", key], env=env)
    assert r.exit_code == 0 and "ana" in r.output and "ben" in r.output and '{"max": 6}' in r.output
    r = runner.invoke(app, ["config", "set", key, "7", "--author", "cy", "--expected-version", "1"], env=env)
    assert r.exit_code == 1 and "expected version 1, found 2" in r.output


def test_store_from_services_uses_the_profile_and_redis(services: Services) -> None:
    with ConfigStore.from_services(services, ttl=1.0) as store:
        assert (store.environment, store.channel) == ("test", "tradekit.config.test")
        assert store._worker is not None  # subscribed, since the test profile configures Redis
