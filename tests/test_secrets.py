"Secrets: the clear text never reaches the database (SQLite file bytes, PostgreSQL rows) nor the logs."

import logging
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.config import Settings, load_settings
from tradekit.secrets import KEY_ENV, SecretStore, UnreadableSecret, load_keyring, rotate_secrets
from tradekit.services import open_database

CLEAR = "exch-4pI-s3cret-" + uuid.uuid4().hex


def test_cli_secret_never_in_sqlite_file_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("TRADEKIT_PROFILE", "TRADEKIT_DATABASE_URL", KEY_ENV, "TRADEKIT_SECRET_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    env = {"TRADEKIT_DATA_DIR": str(tmp_path)}
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and their parameters
    runner = CliRunner()
    outputs = [
        runner.invoke(app, ["secrets", "set", "binance.secret", "--author", "t"], input=CLEAR + "\n", env=env)
    ]
    outputs += [runner.invoke(app, ["secrets", cmd], env=env) for cmd in ("list", "rotate")]
    assert [r.exit_code for r in outputs] == [0, 0, 0], [r.output for r in outputs]
    assert "binance.secret" in outputs[1].output and "re-encrypted 1 secrets" in outputs[2].output
    secret = _store(tmp_path).get("binance.secret")
    logging.getLogger("tradekit.test").info("loaded %s", secret)
    assert secret.reveal() == CLEAR and "INSERT INTO secrets" in caplog.text
    assert CLEAR not in caplog.text and not any(CLEAR in r.output for r in outputs)
    assert CLEAR.encode() not in (tmp_path / "tradekit.db").read_bytes()


def _store(data_dir: Path) -> SecretStore:
    settings = load_settings(profile="embedded", settings_file=None, data_dir=data_dir)
    return SecretStore(open_database(settings), load_keyring(settings))


def test_postgres_rows_hold_tokens_only_and_env_key_rotation(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env, name = f"test-{uuid.uuid4().hex[:8]}", "telegram.bot_token"
    monkeypatch.setenv(KEY_ENV, old)
    SecretStore(engine, load_keyring(settings), env).set(name, CLEAR, author="t")
    monkeypatch.setenv(KEY_ENV, f"{new},{old}")
    assert rotate_secrets(engine, settings) >= 1
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT secrets::text FROM secrets")).scalars().all()
    assert rows and not any(CLEAR in row for row in rows)
    monkeypatch.setenv(KEY_ENV, new)
    secret = SecretStore(engine, load_keyring(settings), env).get(name)
    assert secret.reveal() == CLEAR and CLEAR not in f"{secret!r} {secret}"
    monkeypatch.setenv(KEY_ENV, old)
    with pytest.raises(UnreadableSecret):
        SecretStore(engine, load_keyring(settings), env).get(name)
