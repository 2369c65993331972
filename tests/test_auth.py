"API keys on the real PostgreSQL: hashed storage, 401/403/429, revocation within the cache TTL."

import time
import uuid

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from tradekit.auth import (
    Forbidden,
    KeyChecker,
    RateLimited,
    Scope,
    Unauthorized,
    create_api_key,
    revoke_api_key,
)
from tradekit.cli import app
from tradekit.errors import TradekitError


def _name(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:8]}"


def test_key_is_stored_hashed(engine: Engine) -> None:
    name = _name("svc")
    key = create_api_key(engine, name, ["read", "trade"])
    secret = key.split("_", 2)[2]
    with engine.connect() as conn:
        dump = conn.execute(text("SELECT api_keys::text FROM api_keys")).scalars().all()
        row = conn.execute(text("SELECT scopes, revoked_at FROM api_keys WHERE name = :n"), {"n": name}).one()
    assert not any(secret in line for line in dump)
    assert tuple(row) == ("read,trade", None)


def test_missing_weak_and_bad_keys(engine: Engine) -> None:
    reader = create_api_key(engine, _name("reader"), [Scope.read])
    trader = create_api_key(engine, _name("trader"), [Scope.trade])
    admin = create_api_key(engine, _name("admin"), [Scope.admin])
    checker = KeyChecker(engine)
    for raw in (None, "", "tk_nope", reader[:-1] + ("A" if reader[-1] != "A" else "B")):
        with pytest.raises(Unauthorized) as e:
            checker.check(raw, Scope.read)
        assert e.value.http_status == 401 and isinstance(e.value, TradekitError)
    with pytest.raises(Forbidden) as e:
        checker.check(reader, Scope.trade)
    assert e.value.http_status == 403
    with pytest.raises(Forbidden):
        checker.check(trader, Scope.admin)
    assert checker.check(trader, Scope.read).allows(Scope.trade)
    assert checker.check(admin, Scope.trade).name.startswith("admin-")


def test_rate_limit_per_key(engine: Engine) -> None:
    a, b = create_api_key(engine, _name("a"), ["read"]), create_api_key(engine, _name("b"), ["read"])
    checker = KeyChecker(engine, rate_per_second=20.0, burst=5)
    for _ in range(5):
        checker.check(a, Scope.read)
    with pytest.raises(RateLimited) as e:
        checker.check(a, Scope.read)
    assert e.value.http_status == 429 and 0 < e.value.retry_after <= 0.05
    checker.check(b, Scope.read)  # another key has its own bucket
    time.sleep(0.06)
    checker.check(a, Scope.read)  # refilled at 20/s


def test_revocation_within_ttl(engine: Engine) -> None:
    name = _name("temp")
    key = create_api_key(engine, name, ["admin"])
    checker = KeyChecker(engine, ttl=0.2)
    checker.check(key, Scope.admin)
    revoke_api_key(engine, name)
    time.sleep(0.25)
    with pytest.raises(Unauthorized):
        checker.check(key, Scope.read)
    with pytest.raises(ValueError, match="no active API key"):
        revoke_api_key(engine, name)


def test_cli_keys_create_and_revoke(engine: Engine) -> None:
    name, env, runner = _name("cli"), {"TRADEKIT_PROFILE": "test"}, CliRunner()
    r = runner.invoke(app, ["keys", "create", name, "--scope", "read", "--scope", "trade"], env=env)
    assert r.exit_code == 0, r.output
    key = r.stdout.strip()
    assert KeyChecker(engine).check(key, Scope.trade).name == name
    assert runner.invoke(app, ["keys", "revoke", name], env=env).exit_code == 0
    with pytest.raises(Unauthorized):
        KeyChecker(engine).check(key, Scope.read)
    r = runner.invoke(app, ["keys", "create", _name("x"), "--scope", "root"], env=env)
    assert r.exit_code == 2
    r = runner.invoke(app, ["keys", "revoke", name], env=env)
    assert r.exit_code == 2 and "no active API key" in r.output
