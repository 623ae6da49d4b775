"""docker-compose.yml's worker instances: each worker service runs its own `--instance`, named by the service, and
Compose refuses to scale one (replicas of a service would all run the same instance and fence one another)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# What `docker compose config` needs to interpolate the file; placeholders, as in `make compose-check`.
PLACEHOLDERS = {
    name: "compose-check" for name in ("POSTGRES_PASSWORD", "TRADECORE_JWT_SECRET", "GRAFANA_ADMIN_PASSWORD")
}


def workers(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if (s.get("command") or [])[:1] == ["worker"]}


def instance_of(command: list[str]) -> str:
    assert command.count("--instance") == 1, command
    return command[command.index("--instance") + 1]


def test_each_worker_service_runs_the_instance_its_name_says() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    found = workers(services)
    assert {"worker", "worker-1", "worker-2"} <= set(found)
    instances = {name: instance_of(s["command"]) for name, s in found.items()}
    assert len(set(instances.values())) == len(instances), instances
    for name, instance in instances.items():
        match = re.fullmatch(r"worker(?:-(\d+))?", name)
        assert match is not None, name
        assert instance == (match.group(1) or "0"), (name, instance)
        # A fixed name: Compose refuses to scale the service (tested below with Compose itself).
        assert found[name]["container_name"] == f"tradecore-worker-{instance}"
        # One metrics port in every container, whatever the instance (Prometheus: worker-N:9400).
        assert found[name]["environment"]["TRADECORE_METRICS_PORT"] == "9400"
    # Instance 0 runs by default; the others only with the `scaled` profile.
    assert "profiles" not in found["worker"]
    assert all(s["profiles"] == ["scaled"] for name, s in found.items() if name != "worker")


def compose(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "compose", *args],
        cwd=cwd,
        env={**os.environ, **PLACEHOLDERS},
        capture_output=True,
        text=True,
    )


def compose_available() -> bool:
    return shutil.which("docker") is not None and compose("version", cwd=ROOT).returncode == 0


@pytest.mark.skipif(not compose_available(), reason="no `docker compose` (make compose-check installs it)")
def test_compose_starts_three_instances_with_the_profile_and_refuses_to_scale_one(tmp_path: Path) -> None:
    shown = compose("-f", str(COMPOSE), "--profile", "scaled", "config", "--format", "json", cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    services = yaml.safe_load(shown.stdout)["services"]
    assert sorted(instance_of(s["command"]) for s in workers(services).values()) == ["0", "1", "2"]
    default = yaml.safe_load(compose("-f", str(COMPOSE), "config", "--format", "json", cwd=ROOT).stdout)
    assert [instance_of(s["command"]) for s in workers(default["services"]).values()] == ["0"]

    override = tmp_path / "scale.yml"
    override.write_text("services:\n  worker:\n    scale: 3\n")
    refused = compose("-f", str(COMPOSE), "-f", str(override), "config", "-q", cwd=ROOT)
    assert refused.returncode != 0
    assert "container name must be unique" in refused.stderr
