"Fixtures shared by the test suite: the real PostgreSQL and Redis, and an embedded Tansu broker."

from collections.abc import Iterator
from pathlib import Path

import pytest
from bentoml._internal.bento.bento import BentoStore
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.models import ModelStore
from sqlalchemy import Engine

from tradekit.config import Settings, load_settings
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
    home, c = tmp_path_factory.mktemp("bentoml"), BentoMLContainer
    for store in ("models", "bentos", "envs", "tmp"):
        (home / store).mkdir()
    with (
        pytest.MonkeyPatch.context() as mp,
        c.bentoml_home.patch(str(home)),
        c.model_store.patch(ModelStore(home / "models")),
        c.bento_store.patch(BentoStore(home / "bentos")),
    ):
        mp.setenv("BENTOML_HOME", str(home))
        yield home
