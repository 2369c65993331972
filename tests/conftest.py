"Fixtures shared by the test suite: the real PostgreSQL and Redis, and an embedded Tansu broker."

from collections.abc import Iterator
from pathlib import Path

import pytest
from bentoml._internal.configuration.containers import BentoMLContainer
from sqlalchemy import Engine

from tradekit.config import Settings, load_settings
from tradekit.registry import use_bentoml_home
from tradekit.services import EmbeddedBroker, Services, open_database, open_services

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("tansu") / "tansu.log") as b:
        yield b


@pytest.fixture(scope="session")
def settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    "The `[test]` profile: PostgreSQL database `test`, Redis db 15, the session's broker."
    return load_settings(
        profile="test",
        settings_file=ROOT / "settings.ini",
        kafka_bootstrap=broker.bootstrap,
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    with open_services(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    "The test PostgreSQL, with the tables of every module the test module imported (so: one per module)."
    engine = open_database(settings)
    assert engine.dialect.name == "postgresql"
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def bento_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    "A BentoML store in a temp dir, for this process (BentoML reads BENTOML_HOME once) and its children."
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", "")  # restored at the end; `use_bentoml_home` sets it
        yield use_bentoml_home(tmp_path_factory.mktemp("bentoml"))
    c = BentoMLContainer
    for provider in (c.bentoml_home, c.model_store, c.bento_store):
        provider.reset()  # back to BentoML's own store
