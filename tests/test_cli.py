"The `tradekit` command as a user runs it: real processes, real exit codes."

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradekit.services import free_port

TRADEKIT = [str(Path(sys.executable).parent / "tradekit")]  # the installed console script


def run_cli(*args: str, tmp_path: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRADEKIT_")}
    return subprocess.run(
        [*TRADEKIT, *args],
        env={**base, "TRADEKIT_DATA_DIR": str(tmp_path), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help(tmp_path: Path) -> None:
    r = run_cli("--help", tmp_path=tmp_path)
    assert r.returncode == 0 and "services" in r.stdout and "demo" in r.stdout


def test_demo_prints_round_trip_table(tmp_path: Path) -> None:
    r = run_cli("demo", tmp_path=tmp_path, timeout=600)  # ~1 min here; it trains, backtests, builds a bento
    assert r.returncode == 0, r.stderr
    for step in ("database write/read", "cache set/get", "kafka produce/consume"):
        assert step in r.stdout


def test_services_check_all_up(tmp_path: Path) -> None:
    r = run_cli("services", "check", tmp_path=tmp_path, TRADEKIT_PROFILE="test", TRADEKIT_KAFKA_BOOTSTRAP="")
    assert r.returncode == 0, r.stdout + r.stderr


def test_services_check_names_redis_when_down(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    r = run_cli("services", "check", tmp_path=tmp_path, TRADEKIT_REDIS_URL=url)
    assert r.returncode == 1
    assert f"down: cache ({url})" in r.stderr


@pytest.mark.parametrize(
    "var, value",
    [
        ("TRADEKIT_DATABASE_URL", "postgres//missing-colon"),
        ("TRADEKIT_REDIS_URL", "http://127.0.0.1:6379"),
        ("TRADEKIT_KAFKA_BOOTSTRAP", "localhost"),
        ("TRADEKIT_PROFILE", "nonexistent"),
    ],
)
def test_bad_setting_is_one_line_exit_2(tmp_path: Path, var: str, value: str) -> None:
    r = run_cli("services", "check", tmp_path=tmp_path, **{var: value})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and var in lines[0], r.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    r = run_cli("--debug", "services", "check", tmp_path=tmp_path, TRADEKIT_DATABASE_URL="nope")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_events_publish_file_then_replay(tmp_path: Path, broker) -> None:
    from tradekit.data import synthetic_ticks

    ticks = synthetic_ticks(40, seed=2).assign(symbol="SYN")
    path = tmp_path / "ticks.csv"
    ticks.to_csv(path)
    env = {"TRADEKIT_KAFKA_BOOTSTRAP": broker.bootstrap}
    topic = f"tradekit.test.ticks.v1.{tmp_path.name[-8:]}"
    r = run_cli("events", "publish-file", str(path), "--topic", topic, tmp_path=tmp_path, **env)
    assert r.returncode == 0 and "published 40 ticks" in r.stdout, r.stdout + r.stderr
    r = run_cli(
        "events", "replay", "--topic", topic, "--from", "2000-01-01", "--limit", "5", tmp_path=tmp_path, **env
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('"type"') == 5 and "5 events from" in r.stderr


def test_events_bad_input_is_one_line(tmp_path: Path, broker) -> None:
    env = {"TRADEKIT_KAFKA_BOOTSTRAP": broker.bootstrap}
    r = run_cli("events", "publish-file", str(tmp_path / "missing.csv"), tmp_path=tmp_path, **env)
    assert r.returncode in (1, 2) and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_execution_run_stops_when_idle(tmp_path: Path, broker) -> None:
    env = {"TRADEKIT_KAFKA_BOOTSTRAP": broker.bootstrap}
    r = run_cli("execution", "run", "--idle-timeout", "3", tmp_path=tmp_path, **env)
    assert r.returncode == 0 and "handled 0" in r.stdout, r.stdout + r.stderr
