"""monitoring/: every metric an alert rule or a Grafana panel uses is one tradekit really exports."""

import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import tradekit.dashboards.data  # noqa: F401  (the modules that update the metrics, imported as a service does)
import tradekit.execution.service  # noqa: F401
import tradekit.jobs  # noqa: F401
from tradekit.monitoring import JOB_RUNS, exported_names, serve_metrics

MONITORING = Path(__file__).resolve().parents[1] / "monitoring"
METRIC = re.compile(r"\btradekit_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def _rules() -> list[dict]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return [rule for g in groups for rule in g["rules"]]


def _panel_exprs() -> list[str]:
    dash = json.loads((MONITORING / "grafana" / "tradekit.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


@pytest.fixture(scope="module")
def scraped() -> set[str]:
    "Every sample name a real /metrics scrape can show: the families it describes, expanded by type."
    JOB_RUNS.labels(job="monitoring-test", status="succeeded").inc()
    srv = serve_metrics()
    try:
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{srv.server_port}/metrics", timeout=5).read().decode()
        )
    finally:
        srv.shutdown()
    names = set()
    for fam in text_string_to_metric_families(body):
        names |= {fam.name, *(fam.name + s for s in SUFFIXES.get(fam.type, ()))}
        names |= {s.name for s in fam.samples}
    return names


def test_configs_parse() -> None:
    prom = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["alerts.yml"] and len(prom["scrape_configs"]) >= 3
    rules = _rules()
    names = {r["alert"] for r in rules}
    required = {"DecisionLatencySLOBreach", "KafkaConsumerLag", "NoTicks", "JobFailed", "DrawdownLimit"}
    assert required <= names, required - names
    assert all(r["labels"]["severity"] in ("page", "warning") and r["annotations"]["summary"] for r in rules)
    assert len(_panel_exprs()) >= 15


def test_every_metric_used_is_exported(scraped: set[str]) -> None:
    used = {m for expr in [r["expr"] for r in _rules()] + _panel_exprs() for m in METRIC.findall(expr)}
    assert len(used) >= 15, used
    assert used <= scraped, f"used by monitoring/ but not exported: {sorted(used - scraped)}"
    described = {n + s for n in exported_names() for s in ("", "_total", "_bucket", "_sum", "_count")}
    assert used <= described  # the same check through tradekit.monitoring.exported_names
    assert "tradekit_job_runs_total" in scraped and "tradekit_latency_seconds_bucket" in scraped
