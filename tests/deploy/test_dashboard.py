"""The monitoring that docker-compose provisions fits the code: the Grafana dashboard asks only for metrics a
running API and worker export, from the datasource provisioned next to it, and Prometheus scrapes the ports the
processes serve on by default."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from api.settings import ApiSettings
from deploy.local.stack import Endpoints
from streams.metrics import PROJECTOR_METRICS_PORT
from streams.worker import METRICS_PORT_BASE
from tests.streams.test_metrics import scrape_until
from tests.support.api_server import api_server
from tests.support.workers import start_worker_with_metrics

ROOT = Path(__file__).parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tradecore.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def exported(metrics_text: str) -> set[str]:
    """Every series name a scrape can carry, labelled metrics without samples yet included (from HELP/TYPE)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


@pytest.mark.integration
def test_the_dashboard_references_only_metrics_the_api_and_a_worker_export(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    prefix = f"dash-{uuid.uuid4().hex[:8]}."
    with api_server(endpoints, tmp_path, prefix) as api:
        worker, metrics = start_worker_with_metrics(endpoints, prefix, ["risk"], tmp_path / "worker.log")
        try:
            from_worker = scrape_until(metrics, lambda text: "tradecore_" in text)
        finally:
            worker.terminate()
            worker.wait(60)
        from_api = httpx.get(f"{api.url}/metrics", timeout=10).text
    names = exported(from_api) | exported(from_worker)
    wanted = {name for expr in dashboard_exprs() for name in re.findall(r"\btradecore_[a-z0-9_]+", expr)}
    assert len(wanted) >= 12, wanted
    assert not wanted - names, f"the dashboard asks for metrics nobody exports: {sorted(wanted - names)}"


def test_the_dashboard_uses_the_provisioned_datasource_and_prometheus_scrapes_the_default_ports() -> None:
    datasources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    [uid] = [d["uid"] for d in datasources["datasources"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {t["datasource"]["uid"] for p in panels for t in p.get("targets", [])}
    assert used == {uid}

    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    port_field = ApiSettings.model_fields["port"].default
    assert targets == {
        "tradecore-api": [f"api:{port_field}"],
        "tradecore-worker": [f"worker:{METRICS_PORT_BASE}"],
        "tradecore-projector": [f"projector:{PROJECTOR_METRICS_PORT}"],
    }

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in ("prometheus", "grafana"):
        for volume in compose["services"][service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repository"
