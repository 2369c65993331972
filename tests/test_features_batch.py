"Property tests for tradekit.features.batch: random bars, parameters and NaN gaps against TA-Lib."

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tradekit.features import batch as fb

COLUMNS = ("high", "low", "close", "volume")


@st.composite
def bars(draw: st.DrawFn, max_len: int = 300, gaps: bool = True) -> pd.DataFrame:
    "Positive OHLC-like bars at a random price scale, with NaN gaps in random columns when `gaps`."
    n = draw(st.integers(0, max_len))
    steps = draw(arrays(np.float64, n, elements=st.floats(-0.1, 0.1)))
    spread = draw(arrays(np.float64, n, elements=st.floats(0, 0.05)))
    scale = 10.0 ** draw(st.integers(-4, 6))
    close = scale * np.exp(np.cumsum(steps))
    frame = pd.DataFrame(
        dict(high=close * (1 + spread), low=close * (1 - spread), close=close, volume=np.round(1e4 * spread)),
        index=pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
    )
    if gaps and n:
        for col in draw(st.lists(st.sampled_from(COLUMNS), max_size=3)):
            at = draw(st.lists(st.integers(0, n - 1), max_size=4))
            frame.iloc[at, frame.columns.get_loc(col)] = np.nan
    return frame


def assert_matches(
    got: pd.Series | pd.DataFrame,
    want: object,  # the reference output(s)
    unit: object = None,  # scale of the near-zero floor, one number or one per bar; default: the column's
    rtol: float = 1e-9,
) -> None:
    "Equal NaN positions, and |got - want| <= rtol |want| + 1e-12 unit."
    got = got.to_frame() if isinstance(got, pd.Series) else got
    want = want if isinstance(want, tuple | list) else [want]
    for (name, g), w in zip(got.items(), want, strict=True):
        g, w = g.to_numpy(), np.asarray(w, float)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{name}: NaN positions")
        scale = np.abs(w[~np.isnan(w)]).max(initial=0.0) if unit is None else np.nan_to_num(unit)
        bad = ~(np.abs(g - w) <= rtol * np.abs(w) + 1e-12 * scale) & ~np.isnan(w)
        i = int(bad.argmax()) if bad.any() else -1
        assert i < 0, f"{name}: {bad.sum()} values differ, first at bar {i}: {g[i]!r} vs {w[i]!r}"


def no_valid_bar(*inputs: np.ndarray) -> bool:
    "True when no bar has every input valid: TA-Lib's wrapper then computes on the last bar anyway."
    return not np.all([~np.isnan(x) for x in inputs], axis=0).any()


def rolling_std(x: np.ndarray, n: int) -> np.ndarray:
    "Exact two-pass sample standard deviation of each window of `n` values (NaN if it holds one)."
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = np.lib.stride_tricks.sliding_window_view(x, n).std(axis=1, ddof=1)
    return out


@settings(max_examples=150, deadline=None)
@given(bars(), st.integers(1, 40), st.integers(2, 40))
def test_single_input_indicators_match_talib(b: pd.DataFrame, n: int, n2: int) -> None:
    c = b.close.to_numpy()
    assert_matches(fb.sma(b.close, n), talib.SMA(c, n))
    assert_matches(fb.ema(b.close, n), talib.EMA(c, n))
    assert_matches(fb.rsi(b.close, n2), talib.RSI(c, n2))
    assert_matches(fb.returns(b.close, n), talib.ROCP(c, n))
    assert_matches(fb.log_returns(b.close, n), talib.LN(talib.ROCR(c, n)))
    assert_bands_match(fb.bollinger(b.close, n2, n / 10), talib.BBANDS(c, n2, n / 10, n / 10), b.close, n2)


def assert_bands_match(got: pd.DataFrame, want: tuple, close: pd.Series, n: int) -> None:
    """The middle band to 1e-9 and the half-width (k x deviation) to 1e-8, near 0 in window price units.

    On windows trending ~10% a bar TA-Lib's deviation is off an exact (rational) one by up to ~4e-10, ours
    by ~1e-11, so a lower band near zero can differ by 1e-8 of its value: bands are checked through these.
    """
    upper, middle, lower = (got[col] for col in got)
    assert_matches(middle, want[1])
    window_prices = close.abs().rolling(n).max().to_numpy()
    assert_matches((upper - lower) / 2, (want[0] - want[2]) / 2, unit=window_prices, rtol=1e-8)


@settings(max_examples=150, deadline=None)
@given(bars(), st.integers(2, 30), st.integers(1, 30), st.integers(1, 12))
def test_macd_matches_talib(b: pd.DataFrame, fast: int, extra: int, signal: int) -> None:
    slow = fast + extra
    assert_matches(fb.macd(b.close, fast, slow, signal), talib.MACD(b.close.to_numpy(), fast, slow, signal))


@settings(max_examples=150, deadline=None)
@given(bars(), st.integers(1, 30), st.integers(1, 5), st.integers(1, 5))
def test_high_low_close_indicators_match_talib(b: pd.DataFrame, k: int, smooth_k: int, d: int) -> None:
    h, lo, c = (b[col].to_numpy() for col in ("high", "low", "close"))
    if no_valid_bar(h, lo, c):
        assert fb.stoch(b.high, b.low, b.close, k, smooth_k, d).isna().all().all()
        return
    assert_matches(fb.atr(b.high, b.low, b.close, k), talib.ATR(h, lo, c, k))
    want = talib.STOCH(h, lo, c, k, smooth_k, 0, d, 0)
    assert_matches(fb.stoch(b.high, b.low, b.close, k, smooth_k, d), want, unit=100.0)


@settings(max_examples=150, deadline=None)
@given(bars())
def test_obv_matches_talib(b: pd.DataFrame) -> None:
    c, v = b.close.to_numpy(), b.volume.to_numpy()
    if no_valid_bar(c, v):
        assert fb.obv(b.close, b.volume).isna().all()
        return
    assert_matches(fb.obv(b.close, b.volume), talib.OBV(c, v))


@settings(max_examples=150, deadline=None)
@given(bars(), st.integers(2, 40))
def test_volatility_is_the_exact_rolling_std_of_log_returns(b: pd.DataFrame, n: int) -> None:
    r = np.log(b.close / b.close.shift()).to_numpy()
    assert_matches(fb.volatility(b.close, n), rolling_std(r, n), unit=np.nanmax(np.abs(r), initial=0.0))


def all_outputs(b: pd.DataFrame) -> pd.DataFrame:
    hlc = b.high, b.low, b.close
    one = [f(b.close) for f in (fb.sma, fb.ema, fb.rsi, fb.returns, fb.log_returns, fb.volatility)]
    more = [fb.macd(b.close), fb.bollinger(b.close), fb.atr(*hlc), fb.stoch(*hlc), fb.obv(b.close, b.volume)]
    return pd.concat(one + more, axis=1)


@settings(max_examples=60, deadline=None)
@given(bars(max_len=120, gaps=False), bars(max_len=120, gaps=False), st.data())
def test_no_look_ahead(b: pd.DataFrame, other: pd.DataFrame, data: st.DataObject) -> None:
    if len(b) == 0:
        return
    t = data.draw(st.integers(0, len(b) - 1))
    tail = other.iloc[: len(b) - t - 1].set_axis(b.index[t + 1 : t + 1 + len(other)][: len(b) - t - 1])
    mixed = pd.concat([b.iloc[: t + 1], tail])
    pd.testing.assert_frame_equal(all_outputs(mixed).iloc[: t + 1], all_outputs(b).iloc[: t + 1])


CALLS = {
    "sma": lambda s, **p: fb.sma(s, **p),
    "ema": lambda s, **p: fb.ema(s, **p),
    "rsi": lambda s, **p: fb.rsi(s, **p),
    "macd": lambda s, **p: fb.macd(s, **p),
    "bollinger": lambda s, **p: fb.bollinger(s, **p),
    "atr": lambda s, **p: fb.atr(s, s, s, **p),
    "stoch": lambda s, **p: fb.stoch(s, s, s, **p),
    "returns": lambda s, **p: fb.returns(s, **p),
    "log_returns": lambda s, **p: fb.log_returns(s, **p),
    "volatility": lambda s, **p: fb.volatility(s, **p),
}
BAD = [
    ("sma", dict(n=0), "n must be >= 1, got 0"),
    ("ema", dict(n=-3), "n must be >= 1, got -3"),
    ("rsi", dict(n=1), "n must be >= 2, got 1"),
    ("macd", dict(fast=1), "fast must be >= 2, got 1"),
    ("macd", dict(fast=26, slow=26), "fast must be < slow, got fast=26, slow=26"),
    ("macd", dict(signal=0), "signal must be >= 1, got 0"),
    ("bollinger", dict(n=1), "n must be >= 2, got 1"),
    ("bollinger", dict(k=float("nan")), "k must be a finite number >= 0, got nan"),
    ("atr", dict(n=0), "n must be >= 1, got 0"),
    ("stoch", dict(k=0), "k must be >= 1, got 0"),
    ("stoch", dict(d=0), "d must be >= 1, got 0"),
    ("returns", dict(n=0), "n must be >= 1, got 0"),
    ("log_returns", dict(n=1.5), "n must be an integer, got 1.5"),
    ("volatility", dict(n=True), "n must be an integer, got True"),
]


@pytest.mark.parametrize(("name", "params", "message"), BAD)
def test_bad_parameters_raise_value_error_naming_them(name: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CALLS[name](pd.Series([1.0, 2.0, 3.0]), **params)


def test_inputs_must_be_series_on_one_index() -> None:
    s = pd.Series(np.arange(1.0, 40.0))
    with pytest.raises(ValueError, match="close must be a pandas Series, got ndarray"):
        fb.sma(s.to_numpy())
    with pytest.raises(ValueError, match="volume must have the same index as close"):
        fb.obv(s, s.iloc[::-1])
    with pytest.raises(ValueError, match="close must have the same index as high"):
        fb.atr(s, s, s.iloc[1:])


def test_integer_and_nullable_inputs_are_read_as_float() -> None:
    ints = pd.Series(np.arange(1, 40))
    pd.testing.assert_series_equal(fb.sma(ints, 5), fb.sma(ints.astype(float), 5))
    nullable = pd.Series([None, 1.0, 2.0, 4.0], dtype="Float64")
    assert fb.sma(nullable, 2).tolist()[2:] == [1.5, 3.0]
