"""The worker pod of deploy/k8s/worker.yaml, run as the kubelet would run it but on the shared stack: its init
container's command, then its container's command with the pod name the downward API gives pod 2. The worker must
join Kafka as instance 2, answer every probe the manifest asks of it, be the process a SIGTERM reaches (the shell
execs it) and stop cleanly within the pod's grace period."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from deploy import launch
from deploy.local.stack import Endpoints
from streams import kafka
from streams.settings import KafkaSettings

pytestmark = pytest.mark.integration

WORKER = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "worker.yaml"
ORDINAL = 2


def statefulset() -> dict[str, Any]:
    [found] = [d for d in yaml.safe_load_all(WORKER.read_text()) if d and d["kind"] == "StatefulSet"]
    return found


def instance_ids(settings: KafkaSettings, group: str) -> set[str]:
    client = kafka.admin(settings)  # kept until the answer is in: a destroyed client fails its futures
    [future] = client.describe_consumer_groups([group]).values()
    return {m.group_instance_id for m in future.result(timeout=10).members}


def test_the_worker_pod_runs_its_ordinal_answers_its_probes_and_stops_on_sigterm(
    endpoints: Endpoints, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    spec = statefulset()["spec"]["template"]["spec"]
    [init], [container] = spec["initContainers"], spec["containers"]
    port = launch.free_port()  # the manifest's 9400 may be taken on a shared machine: same path, another port
    env = {
        **os.environ,
        **{e["name"]: e["value"] for e in container["env"] if "value" in e},
        **endpoints.as_env(),  # the ConfigMap's addresses, pointed at the stack
        "TRADECORE_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "TRADECORE_METRICS_HOST": "127.0.0.1",
        "TRADECORE_METRICS_PORT": str(port),
        "PATH": f"{launch.TRADECORE.parent}:{os.environ['PATH']}",  # the image's `tradecore`: this venv's
    }
    subprocess.run(["tradecore", *init["args"]], env=env, check=True, capture_output=True, timeout=180)

    log = tmp_path / "worker.log"
    pod = f"{statefulset()['metadata']['name']}-{ORDINAL}"
    with log.open("wb") as out:
        worker = subprocess.Popen(container["command"], env={**env, "POD_NAME": pod}, stdout=out, stderr=out)
    try:
        paths = {container[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}
        group = f"{kafka_settings.topic_prefix}risk"
        deadline = time.monotonic() + 180
        answered: dict[str, int] = {}
        joined: set[str] = set()
        while not (answered and all(code == 200 for code in answered.values()) and joined):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"probes {answered}, instances {joined}:\n{log.read_text()}"
            time.sleep(1)
            try:
                answered = {path: httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code for path in paths}
            except httpx.TransportError:
                continue
            joined = instance_ids(kafka_settings, group)
        # exec: the pod's main process is the worker itself, so the kubelet's SIGTERM reaches it.
        assert psutil.Process(worker.pid).cmdline()[-3:] == ["worker", "--instance", str(ORDINAL)]
        # Static membership as instance 2 (its transactional ids carry the same instance).
        assert all(member.endswith(f"-{ORDINAL}") for member in joined), joined

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(spec["terminationGracePeriodSeconds"]) == 0, log.read_text()
    finally:
        launch.stop(worker)
