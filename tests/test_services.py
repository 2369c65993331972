"The service floor against the real PostgreSQL, Redis and Tansu."

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlmodel import Session

from tradekit.config import Settings, load_settings
from tradekit.demo import DemoRun, run_demo
from tradekit.services import Services, check_services, free_port


def test_database_is_postgresql_and_takes_writes(services: Services) -> None:
    assert services.engine.dialect.name == "postgresql"
    run_id = uuid.uuid4().hex
    with Session(services.engine) as session:
        session.add(DemoRun(id=run_id, at=datetime.now(UTC)))
        session.commit()
    with Session(services.engine) as session:
        assert session.get(DemoRun, run_id) is not None


def test_cache_is_redis(services: Services) -> None:
    assert isinstance(services.cache, redis.Redis)
    key = f"tradekit:test:{uuid.uuid4().hex}"
    services.cache.set(key, b"v", ex=30)
    assert services.cache.get(key) == b"v"
    services.cache.delete(key)


def test_check_services_all_up(settings: Settings) -> None:
    statuses = check_services(settings)
    assert [s.name for s in statuses] == ["database", "cache", "kafka"]
    assert all(s.ok and s.latency_ms is not None for s in statuses), statuses


def test_demo_on_real_services(settings: Settings) -> None:
    steps = run_demo(settings)
    assert [s.backend for s in steps][:2] == ["postgresql", "Redis"]
    assert "consumed" in steps[2].result


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen]]:
    "A Redis server of the test's own, so stopping it leaves the machine's Redis alone."
    port = free_port()
    server = shutil.which("redis-server") or pytest.skip("redis-server not installed")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""], stdout=subprocess.DEVNULL
    )
    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", proc
    proc.kill()
    proc.wait()


def test_stopped_redis_is_reported(private_redis: tuple[str, subprocess.Popen], tmp_path: Path) -> None:
    url, proc = private_redis
    settings = load_settings(redis_url=url, data_dir=tmp_path)
    assert check_services(settings)[1].ok
    proc.terminate()
    proc.wait()
    cache = check_services(settings)[1]
    assert not cache.ok and "ConnectionError" in cache.detail
