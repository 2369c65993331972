"SqlBarStore against the real PostgreSQL (`settings` from conftest: the `[test]` profile, database `test`)."

import uuid

import pandas as pd
import pytest
from sqlalchemy import delete
from sqlmodel import create_engine

from tradekit.data import BAR_COLUMNS, synthetic_bars
from tradekit.store import BarRow, SqlBarStore, open_bar_store


@pytest.fixture
def store(settings):
    "A store on PostgreSQL whose session time zone is not UTC, so conversions are exercised."
    engine = create_engine(settings.database_url, connect_args={"options": "-c timezone=America/New_York"})
    yield SqlBarStore(engine)
    engine.dispose()


@pytest.fixture
def symbol(store):
    "A symbol no other run uses; its rows are deleted afterwards."
    name = f"T{uuid.uuid4().hex[:12].upper()}"
    yield name
    with store.engine.begin() as conn:
        conn.execute(delete(BarRow.__table__).where(BarRow.__table__.c.symbol == name))


def test_round_trip_is_utc_and_exact(store, symbol):
    bars = synthetic_bars(3000, seed=7, symbol=symbol, start="2024-06-03 09:30+02:00")
    assert store.write(bars, symbol) == 3000
    got = store.read(symbol)
    assert str(got.index.tz) == "UTC" and got.index.name == "timestamp"
    assert list(got.columns) == list(BAR_COLUMNS) and (got.dtypes == "float64").all()
    pd.testing.assert_frame_equal(got, bars.drop(columns="symbol"), check_freq=False, check_index_type=False)
    assert symbol in store.symbols()


def test_upsert_replaces_overlap(store, symbol):
    first = synthetic_bars(1000, seed=1, symbol=symbol)
    second = synthetic_bars(600, seed=2, symbol=symbol, start=first.index[700])  # 300 overlap, 300 new
    store.write(first, symbol)
    store.write(second, symbol)
    got = store.read(symbol)
    assert len(got) == 1300 and got.index.is_unique and got.index.is_monotonic_increasing
    assert got.close.iloc[:700].tolist() == first.close.iloc[:700].tolist()
    assert got.close.iloc[700:].tolist() == second.close.tolist()
    store.write(first.iloc[:10], symbol)  # re-writing the same bars is idempotent
    assert len(store.read(symbol)) == 1300


def test_range_read_is_inclusive_and_tz_aware(store, symbol):
    bars = synthetic_bars(500, seed=3, symbol=symbol, freq="5min", start="2024-01-02 14:30")
    store.write(bars, symbol)
    new_york = pd.Timestamp("2024-01-02 11:00", tz="America/New_York")
    part = store.read(symbol, start="2024-01-02 15:00", end=new_york)  # naive start: UTC
    assert part.index[0] == bars.index[6] and part.index[-1] == bars.index[18] and len(part) == 13
    assert len(store.read(symbol, end=bars.index[0])) == 1
    assert len(store.read(symbol, start=bars.index[-1] + pd.Timedelta("1s"))) == 0
    assert store.read("T" + symbol).empty


def test_open_bar_store_uses_postgresql(settings):
    store = open_bar_store(settings)
    try:
        assert isinstance(store, SqlBarStore) and store.engine.dialect.name == "postgresql"
    finally:
        store.engine.dispose()
