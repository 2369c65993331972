"""The Voila dashboards in a real browser: a paper session in the [test] database, Voila on loopback, Debian's
headless Chromium; screenshots go to reports/screenshots/."""

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from sqlalchemy import Engine
from sqlmodel import Session

from tradekit.config import Settings
from tradekit.dashboards.data import LiveSpec, account_group, start_voila
from tradekit.data import synthetic_bars
from tradekit.events import DecisionMade
from tradekit.execution.book import positions_frame
from tradekit.execution.service import paper_session
from tradekit.features.sets import CORE_FEATURES
from tradekit.jobs import JobRun, JobStatus
from tradekit.models.training import MemberSpec, TrainSpec, train
from tradekit.monitoring import LATENCY, serve_metrics
from tradekit.registry import Stage, fingerprint, promote, register
from tradekit.store import open_bar_store

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "reports" / "screenshots"
CHROME_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync --window-size=1280,1500"
).split()

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Debian's chromium and chromium-driver are not installed (.ci/services.sh installs them)",
)


@dataclass(frozen=True)
class PaperData:
    "What the fixture put in the database."

    account: str
    symbol: str
    model: str
    pnl: float


@pytest.fixture(scope="module")
def paper(settings: Settings, engine: Engine, bento_home: Path, tmp_path_factory) -> PaperData:
    "A production model trained on a stored series, a paper session trading it, a recorded backtest run."
    tag = uuid.uuid4().hex[:8]
    symbol, name, account = f"DSH{tag.upper()}", f"dash-{tag}", f"dash-{tag}"
    store = open_bar_store(settings)
    store.write(synthetic_bars(600, seed=int(tag, 16) % 100_000, symbol=symbol), symbol)
    bars = store.read(symbol)
    spec = TrainSpec(
        name=name, members=[MemberSpec(kind="lgbm", params={"n_estimators": 10, "n_jobs": 1})], n_splits=2
    )
    res = train(spec, bars)
    rec = register(
        engine, name, res.model, spec.feature_set, res.metrics, res.params, fingerprint(bars), who="ci"
    )
    promote(engine, name, rec.version, Stage.production, "ci", "dashboard test")
    live = bars.iloc[-120:]
    decisions = [
        DecisionMade(
            event_time=t.to_pydatetime(),
            symbol=symbol,
            account=account,
            side=side,
            qty=10.0,
            price=float(p),
            model=f"{name}:{rec.version}",
            proba=0.6,
        )  # fmt: skip
        for t, p, side in zip(live.index[10::25], live.close.iloc[10::25], ["buy", "sell"] * 3, strict=False)
    ]
    result = paper_session(settings, live, decisions, symbol=symbol, account=account, timeout=20)
    _recorded_backtest(engine, name, rec.version, bars, tmp_path_factory.mktemp("backtest"))
    return PaperData(account, symbol, name, float(result.positions.pnl.sum()))


def _recorded_backtest(engine: Engine, name: str, version: int, bars: pd.DataFrame, folder: Path) -> None:
    "A finished backtest job run of `name` `version` with its files (running the real job takes minutes)."
    hold = bars.close / bars.close.iloc[0] * 100
    pd.DataFrame({"strategy": hold.rolling(5, min_periods=1).mean(), "buy_and_hold": hold}).to_csv(
        folder / "equity.csv"
    )
    ret = hold.iloc[-1] / 100 - 1
    metrics = pd.DataFrame({"strategy": [ret * 0.5, 0.4], "buy_and_hold": [ret, 0.3]})
    metrics.index = ["total_return", "sharpe"]
    metrics.to_csv(folder / "metrics.csv")
    now = datetime.now(UTC)
    params, out = {"model": name, "version": str(version)}, str(folder / "backtest.ipynb")
    run = JobRun(job="backtest", status=JobStatus.succeeded, started_at=now, finished_at=now, duration_s=0.0,
                 parameters=params, output_path=out, pid=0, host="ci")  # fmt: skip
    with Session(engine) as session:
        session.add(run)
        session.commit()


@pytest.fixture(scope="module")
def metrics_url() -> Iterator[str]:
    "A /metrics endpoint with a few decision latencies, standing in for the bento's."
    for seconds in np.geomspace(2e-4, 2e-2, 12):
        LATENCY.labels(stage="decision").observe(seconds)
    srv = serve_metrics()
    yield f"http://127.0.0.1:{srv.server_port}/metrics"
    srv.shutdown()


def decisions_observed() -> int:
    "The decision latencies this process has observed: the fixture's 12, and any an earlier test module made."
    return int(REGISTRY.get_sample_value("tradekit_latency_seconds_count", {"stage": "decision"}))


@pytest.fixture(scope="module")
def voila(settings: Settings, paper: PaperData, metrics_url: str, tmp_path_factory) -> Iterator[str]:
    spec = LiveSpec(account=paper.account, model=paper.model, metrics_urls=(metrics_url,), refresh_s=2)
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    proc, url = start_voila(settings, spec, dashboards_dir=ROOT / "nbs" / "dashboards", log=log, timeout=60)
    yield url
    proc.terminate()
    proc.wait(15)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    options = webdriver.ChromeOptions()
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    options.page_load_strategy = "none"  # Voila streams the page while its kernel runs: do not wait for it
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(voila: str, browser) -> dict[str, str]:
    "Both dashboards opened at once, one tab each (their kernels start side by side); window handles by name."
    handles = {}
    for name in ("live", "research"):
        if handles:
            browser.switch_to.new_window("tab")
        browser.get(f"{voila}voila/render/{name}.ipynb")
        handles[name] = browser.current_window_handle
    return handles


def _wait_for(driver, *needles: str, timeout: float = 60.0, charts: int = 0) -> str:
    "The page's visible text once it contains every needle and `charts` plotly charts have drawn."
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        text = _text(driver)
        drawn = len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg"))
        if all(n in text for n in needles) and drawn >= charts:
            return text
        time.sleep(0.5)
    missing = [n for n in needles if n not in text]
    raise AssertionError(f"dashboard did not show {missing} within {timeout} s; it shows: {text[:1500]}")


def _text(driver) -> str:
    "The visible text; empty while the page has no body yet."
    return " ".join(b.text for b in driver.find_elements(By.TAG_NAME, "body"))


def _shot(driver, name: str) -> Path:
    "A screenshot under reports/screenshots/ once the charts have settled."
    time.sleep(1.0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def test_live_dashboard(pages: dict[str, str], browser, paper: PaperData, engine: Engine) -> None:
    browser.switch_to.window(pages["live"])
    pos = positions_frame(engine, paper.account, account_group(engine, paper.account))
    assert abs(pos.pnl.sum() - paper.pnl) < 1e-6
    pnl = f"P&L {pos.pnl.sum():,.2f}"  # as the database has it
    latency = f"decision latency ({decisions_observed()} decisions on /metrics)"
    needles = (pnl, paper.account, paper.symbol, f"{paper.model} v1", "live hit rate: ", "filled", latency,
               "feature drift")  # fmt: skip
    text = _wait_for(browser, *needles, charts=4, timeout=90)
    assert "no decision past its horizon" not in text, "the session's decisions were not scored"
    updated = next(line for line in text.splitlines() if "updated" in line)
    deadline = time.monotonic() + 15
    while updated in _text(browser) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert updated not in _text(browser), "the dashboard did not redraw itself"
    assert _shot(browser, "live").stat().st_size > 10_000


def test_research_dashboard(pages: dict[str, str], browser, paper: PaperData) -> None:
    browser.switch_to.window(pages["research"])
    needles = (f"{paper.model} v1 (production)", "oos_accuracy", "total_return", "backtest run")
    text = _wait_for(browser, *needles, charts=2, timeout=90)
    assert sum(c in text for c in CORE_FEATURES.columns) >= 10  # feature names on the importance chart
    assert _shot(browser, "research").stat().st_size > 10_000
