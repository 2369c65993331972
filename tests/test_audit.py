"Nothing the project ships reads the future (the CLI's exit codes are tested in nbs/99_cli.ipynb)."

import pytest

from tradekit.audit import SHIPPED, audit_lookahead
from tradekit.data import load_sample, synthetic_bars


@pytest.fixture(scope="module")
def bars() -> dict:
    return {"spx": load_sample("sp500").iloc[-1500:], "hourly": synthetic_bars(1500, seed=9, freq="1h")}


@pytest.mark.parametrize("target", SHIPPED)
def test_shipped_features_have_no_lookahead(target: str, bars: dict) -> None:
    for data in bars.values():
        report = audit_lookahead(target, data, cuts=5, seed=3)
        assert report.ok, str(report)
