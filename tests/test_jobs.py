"Job notebooks under papermill on the real PostgreSQL: reports, run records, the lock, CLI and schedule."

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from test_cli import TRADEKIT, run_cli
from typer.testing import CliRunner

from tradekit.cli import app
from tradekit.config import Settings
from tradekit.jobs import (
    JobAlreadyRunning,
    JobRun,
    JobStatus,
    Schedule,
    ScheduledJob,
    recent_runs,
    run_job,
    run_schedule,
)
from tradekit.registry import Stage, list_models

pytestmark = [
    pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning"),
    pytest.mark.usefixtures("bento_home"),  # a BentoML store in a temp dir, the job kernels' included
]
TEST_ENV = {"TRADEKIT_PROFILE": "test", "TRADEKIT_KAFKA_BOOTSTRAP": ""}


def write_job(folder: Path, name: str, parameters: str, *cells: str) -> None:
    "A job notebook: a papermill `parameters` cell, then `cells`."
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernel})
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    "Throwaway jobs: `tiny` (sleeps `sleep` s) and `boom` (always fails)."
    folder = tmp_path_factory.mktemp("jobs")
    write_job(folder, "tiny", "sleep = 0.0", "import time\ntime.sleep(sleep)", "print('done')")
    write_job(folder, "boom", "n = 1", "raise RuntimeError(f'boom {n}')")
    return folder


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


def html_of(run: JobRun) -> str:
    assert Path(run.output_path).is_file() and run.html_path.is_file(), run
    return run.html_path.read_text()


# %% the real job notebooks


@pytest.fixture(scope="module")
def trained(settings: Settings, reports: Path) -> tuple[str, JobRun]:
    "The `train` job with small parameters, on a model name of its own (so its first version is promoted)."
    name = f"jobs-test-{uuid.uuid4().hex[:8]}"
    params = {"name": name, "n_splits": 3, "members": "lgbm", "n_estimators": 30, "n_jobs": 1}
    return name, run_job("train", params, settings, reports)


def test_train_registers_and_promotes(trained: tuple[str, JobRun], engine: Engine, reports: Path) -> None:
    name, run = trained
    assert run.status == JobStatus.succeeded, run.error
    assert Path(run.output_path).parent.parent == reports / "train"
    assert "<img" in html_of(run) and "oos_log_loss" in html_of(run)
    assert (Path(run.output_path).parent / "registry.json").is_file()
    assert [(r.version, r.stage) for r in list_models(engine, name)] == [(1, Stage.production)]


def test_daily_report(trained: tuple[str, JobRun], settings: Settings, reports: Path) -> None:
    name, _ = trained
    run = run_job("daily_report", {"model": name, "n_bars": 100}, settings, reports)
    assert run.status == JobStatus.succeeded, run.error
    html = html_of(run)
    assert html.count("<img") >= 1 and "rsi_14" in html and f"{name} v1" in html and "position" in html


def test_backtest(trained: tuple[str, JobRun], settings: Settings, reports: Path) -> None:
    name, _ = trained
    params = {"model": name, "train_size": 3000, "test_size": 1000, "enter_above": 0.51, "exit_below": 0.49}
    run = run_job("backtest", params, settings, reports)
    assert run.status == JobStatus.succeeded, run.error
    html = html_of(run)
    assert html.count("<img") >= 2, "the equity curve and the drawdown plot"
    assert all(k in html for k in ("buy_and_hold", "sharpe", "max_drawdown")), "the metrics table"
    assert (Path(run.output_path).parent / "metrics.csv").is_file()


# %% the record and the lock


def test_failed_job_is_recorded_with_its_cell(
    settings: Settings, reports: Path, jobs_dir: Path, engine: Engine
) -> None:
    run = run_job("boom", {"n": 7}, settings, reports, jobs_dir)
    assert (run.status, run.error) == (
        JobStatus.failed,
        "raise RuntimeError(f'boom {n}')\nRuntimeError: boom 7",
    )
    assert "boom 7" in html_of(run)
    assert recent_runs(engine, "boom", limit=1)[0].id == run.id


def test_no_double_start_and_stale_lock(
    settings: Settings, reports: Path, jobs_dir: Path, engine: Engine
) -> None:
    first: list[JobRun] = []
    worker = threading.Thread(
        target=lambda: first.append(run_job("tiny", {"sleep": 4}, settings, reports, jobs_dir))
    )
    worker.start()
    deadline = time.monotonic() + 20
    while not any(r.status == JobStatus.running for r in recent_runs(engine, "tiny", 1)):
        assert time.monotonic() < deadline, "the first run never started"
        time.sleep(0.1)
    with pytest.raises(JobAlreadyRunning, match="job 'tiny' is already running"):
        run_job("tiny", {}, settings, reports, jobs_dir)
    worker.join(30)
    assert first[0].status == JobStatus.succeeded, first[0].error

    dead = subprocess.Popen(["true"])
    dead.wait()
    with Session(engine) as session:  # a run whose process died without finishing
        stale = JobRun(job="tiny", status=JobStatus.running, started_at=first[0].started_at, parameters={},
                       pid=dead.pid, host=first[0].host)  # fmt: skip
        session.add(stale)
        session.commit()
        stale_id = stale.id
    assert run_job("tiny", {}, settings, reports, jobs_dir).status == JobStatus.succeeded
    with Session(engine) as session:
        taken = session.get(JobRun, stale_id)
        assert taken.status == JobStatus.failed and taken.error.startswith("stale: process")


# %% the command line


def test_cli_exit_codes(tmp_path: Path, reports: Path, jobs_dir: Path) -> None:
    opts = ["--jobs-dir", str(jobs_dir), "--reports-dir", str(reports)]
    ok = run_cli("jobs", "run", "tiny", "-p", "sleep=0.1", *opts, tmp_path=tmp_path, **TEST_ENV)
    assert ok.returncode == 0, ok.stderr
    html = Path(ok.stdout.strip().rsplit(": ", 1)[1])
    assert html.is_file() and html.parent.parent == reports / "tiny" and "succeeded" in ok.stdout

    failed = run_cli("jobs", "run", "boom", *opts, tmp_path=tmp_path, **TEST_ENV)
    assert failed.returncode == 1
    assert failed.stderr.strip() == "error: job boom failed: RuntimeError: boom 1", failed.stderr

    bad = run_cli("jobs", "run", "tiny", "-p", "slep=1", *opts, tmp_path=tmp_path, **TEST_ENV)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: unknown parameter 'slep' for job 'tiny' (parameters: sleep)"
    listed = run_cli("jobs", "list", tmp_path=tmp_path, **TEST_ENV)
    assert listed.returncode == 0 and "30 22 * * mon-fri" in listed.stdout, listed.stdout
    assert all(job in listed.stdout for job in ("train", "backtest", "daily_report"))


# %% the schedule


def test_schedule_fires_and_stops(settings: Settings, reports: Path, jobs_dir: Path, engine: Engine) -> None:
    every_second = Schedule(
        jobs=[ScheduledJob(job="tiny", cron="* * * * * *"), ScheduledJob(job="boom", cron="* * * * * *")]
    )
    stop = threading.Event()
    threading.Timer(3, stop.set).start()
    t0 = time.monotonic()
    cwd = os.getcwd()
    runs = run_schedule(settings, every_second, stop, reports, jobs_dir)
    assert time.monotonic() - t0 < 20 and os.getcwd() == cwd
    assert {(r.job, r.status) for r in runs} == {("tiny", JobStatus.succeeded), ("boom", JobStatus.failed)}
    assert all(r.status != JobStatus.running for r in recent_runs(engine, limit=10))


def test_cli_schedule_stops_on_sigterm(tmp_path: Path, reports: Path, jobs_dir: Path, engine: Engine) -> None:
    schedule = tmp_path / "jobs.yaml"
    schedule.write_text("jobs:\n  - {job: tiny, cron: '*/2 * * * * *', params: {sleep: 0.1}}\n")
    env = {**os.environ, "TRADEKIT_DATA_DIR": str(tmp_path), "COLUMNS": "250", **TEST_ENV}
    args = [
        "jobs",
        "schedule",
        "--file",
        str(schedule),
        "--jobs-dir",
        str(jobs_dir),
        "--reports-dir",
        str(reports),
    ]
    before = {r.id for r in recent_runs(engine, "tiny", 50)}
    proc = subprocess.Popen(
        [*TRADEKIT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60  # start-up, then a run every 2 s: seconds, longer on a loaded machine
    while time.monotonic() < deadline and not any(
        r.id not in before and r.status == JobStatus.succeeded for r in recent_runs(engine, "tiny", 50)
    ):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "tiny run" in out and "succeeded" in out and "stopped after" in out, out


def test_cli_schedule_has_a_metrics_port_option() -> None:
    result = CliRunner().invoke(app, ["jobs", "schedule", "--help"])
    assert result.exit_code == 0 and "--metrics-port" in result.output
