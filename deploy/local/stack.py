"""`tradecore stack up | down | status`: the local stack's lifecycle, idempotent and confined to its own processes."""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fasteners

from deploy.local import kafka, postgres, registry
from deploy.local.errors import StackError
from deploy.local.process import ProcessRecord, describe_listener, port_in_use, terminate
from deploy.local.settings import StackSettings

KAFKA_ENV, DATABASE_ENV, REGISTRY_ENV = "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SCHEMA_REGISTRY_URL"

Report = Callable[[str], None]


@dataclass(frozen=True)
class Endpoints:
    """Where clients find the stack's components."""

    kafka_bootstrap: str
    database_url: str
    schema_registry_url: str

    def as_env(self) -> dict[str, str]:
        return {
            KAFKA_ENV: self.kafka_bootstrap,
            DATABASE_ENV: self.database_url,
            REGISTRY_ENV: self.schema_registry_url,
        }


@dataclass(frozen=True)
class ComponentStatus:
    """One line of `stack status`."""

    name: str
    endpoint: str
    state: str  # running | unhealthy | stopped | external | unreachable
    pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("running", "external")


class LocalStack:
    """Kafka, Postgres and the schema registry under ``settings.stack_dir``; a component whose variable
    (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, SCHEMA_REGISTRY_URL) is set in ``environ`` is used, not started."""

    def __init__(self, settings: StackSettings | None = None, environ: Mapping[str, str] = os.environ) -> None:
        self.settings = settings or StackSettings()
        self.dir = self.settings.stack_dir
        self.env_file = self.dir / "env"
        # A shell that sourced `.stack/env` (as the README offers) names this stack's own endpoints: they are ours,
        # to report with their processes, not somebody else's server.
        own = self.written_endpoints()
        self.external = {
            name: value
            for name in (KAFKA_ENV, DATABASE_ENV, REGISTRY_ENV)
            if (value := environ.get(name)) and value != own.get(name)
        }
        self._state_file = self.dir / "state.json"

    # -- state ---------------------------------------------------------------------------------------------
    def written_endpoints(self) -> dict[str, str]:
        """What ``up`` last wrote to ``.stack/env`` (nothing once ``down`` removed it)."""
        try:
            lines = self.env_file.read_text().splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def _load(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return {"processes": {}}
        except json.JSONDecodeError as err:
            raise StackError(
                f"{self._state_file} is corrupt ({err})",
                hint="run `tradecore stack down --purge` to start afresh",
            ) from err
        return state

    def _save(self, state: Mapping[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self._state_file)

    def _records(self, state: Mapping[str, Any]) -> dict[str, ProcessRecord]:
        return {name: ProcessRecord.from_json(data) for name, data in state.get("processes", {}).items()}

    def _lock(self) -> fasteners.InterProcessLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        return fasteners.InterProcessLock(str(self.dir / ".lock"))

    # -- up ------------------------------------------------------------------------------------------------
    def up(self, brokers: int = 1, report: Report = print) -> Endpoints:
        """Start what is not running, wait until everything answers, write ``.stack/env``; safe to repeat."""
        if brokers not in (1, 3):
            raise StackError(f"--brokers must be 1 or 3, not {brokers}", hint="use 3 for a replicated cluster")
        with self._lock():
            state = self._load()
            try:
                database_url = self._postgres_up(report)
                kafka_bootstrap = self._kafka_up(state, brokers, report)
                registry_url = self._registry_up(state, report)
            finally:
                # Whatever did start must stay known, so that `down` can stop it after a failed `up`.
                self._save(state)
            endpoints = Endpoints(kafka_bootstrap, database_url, registry_url)
            self.env_file.write_text("".join(f"{key}={value}\n" for key, value in endpoints.as_env().items()))
            return endpoints

    def _postgres_up(self, report: Report) -> str:
        if DATABASE_ENV in self.external:
            url = self.external[DATABASE_ENV]
            self._wait_external("Postgres", lambda: postgres.healthy(url), DATABASE_ENV)
            report(f"postgres  external  {url}")
            return url
        info = postgres.running(self.settings)
        verb = "running " if info is not None else "started "
        info = postgres.start(self.settings)
        url = postgres.url(info)
        report(f"postgres  {verb}  {url}  (pid {info.pid})")
        return url

    def _kafka_up(self, state: dict[str, Any], brokers: int, report: Report) -> str:
        if KAFKA_ENV in self.external:
            address = self.external[KAFKA_ENV]
            self._wait_external("Kafka", lambda: kafka.brokers_up(address) > 0, KAFKA_ENV)
            report(f"kafka     external  {address}")
            return address
        if state.get("brokers", brokers) != brokers:
            raise StackError(
                f"the stack in {self.dir} was created with {state['brokers']} broker(s), not {brokers}",
                hint=f"`tradecore stack down --purge` then `tradecore stack up --brokers {brokers}` "
                "(this deletes the local data), or omit --brokers",
            )
        cluster = kafka.nodes(self.settings, brokers)
        # The data on disk decides: a lost or stale state file must not orphan a formatted log.
        cluster_id = kafka.formatted_cluster_id(cluster[0]) or state.get("cluster_id") or kafka.new_cluster_id()
        state["cluster_id"] = cluster_id
        state["brokers"] = brokers
        records = self._records(state)
        started = []
        for node in cluster:
            record = records.get(node.name)
            if record is not None and record.live() is not None:
                continue
            self._check_port_free(node.client_port, "TRADECORE_KAFKA_PORT", KAFKA_ENV)
            self._check_port_free(node.controller_port, "TRADECORE_KAFKA_PORT", KAFKA_ENV)
            kafka.format_storage(self.settings, node, cluster, cluster_id)
            state["processes"][node.name] = kafka.start(self.settings, node).to_json()
            started.append(node.name)
        records = self._records(state)
        t0 = time.monotonic()
        kafka.wait_ready(cluster, [records[n.name] for n in cluster], self.settings.startup_timeout_s)
        address = kafka.bootstrap(cluster)
        for node in cluster:
            verb = "started " if node.name in started else "running "
            ready = f", ready in {time.monotonic() - t0:.1f}s" if started else ""
            report(f"{node.name:<9} {verb}  {node.address}  (pid {records[node.name].pid}{ready})")
        return address

    def _registry_up(self, state: dict[str, Any], report: Report) -> str:
        if REGISTRY_ENV in self.external:
            url = self.external[REGISTRY_ENV]
            self._wait_external("the schema registry", lambda: registry.healthy(url), REGISTRY_ENV)
            report(f"registry  external  {url}")
            return url
        record = self._records(state).get("registry")
        verb = "running "
        if record is None or record.live() is None:
            self._check_port_free(self.settings.registry_port, "TRADECORE_REGISTRY_PORT", REGISTRY_ENV)
            self._check_port_free(self.settings.registry_management_port, "TRADECORE_REGISTRY_MANAGEMENT_PORT", None)
            record = registry.start(self.settings)
            state["processes"]["registry"] = record.to_json()
            verb = "started "
        t0 = time.monotonic()
        registry.wait_ready(self.settings, record, self.settings.startup_timeout_s)
        ready = f", ready in {time.monotonic() - t0:.1f}s" if verb == "started " else ""
        report(
            f"registry  {verb}  {registry.url(self.settings)}  (Apicurio {registry.version()}, pid {record.pid}{ready})"
        )
        return registry.url(self.settings)

    def _check_port_free(self, port: int, setting: str, external_env: str | None) -> None:
        if port_in_use(port):
            alternative = f", or set {external_env} to use a server already running" if external_env else ""
            raise StackError(
                f"port {port} is taken by {describe_listener(port)}",
                hint=f"stop that process, or set {setting} to a free port{alternative}",
            )

    def _wait_external(self, what: str, answers: Callable[[], bool], variable: str) -> None:
        deadline = time.monotonic() + min(self.settings.startup_timeout_s, 30.0)
        while not answers():
            if time.monotonic() > deadline:
                raise StackError(
                    f"{what} given by {variable} does not answer",
                    hint=f"start it, or unset {variable} to let `tradecore stack up` run a local one",
                )
            time.sleep(1.0)

    # -- down ----------------------------------------------------------------------------------------------
    def down(self, purge: bool = False, report: Report = print) -> list[str]:
        """Stop every process this stack started (and nothing else); with ``purge`` also delete its data."""
        with self._lock():
            state = self._load()
            records = self._records(state)
            # The registry journals into Kafka: stop it before the brokers.
            first = [record for record in records.values() if record.name == "registry"]
            stopped = terminate(first) + terminate(
                [r for r in records.values() if r not in first], alone_s=kafka.LAST_NODE_S
            )
            if postgres.stop(self.settings):
                stopped.append("postgres")
            state["processes"] = {}
            self.env_file.unlink(missing_ok=True)
            if purge:
                for child in self.dir.iterdir():
                    if child.is_dir() and child.name != "cache":
                        shutil.rmtree(child)
                    elif child.is_file() and child.name != ".lock":
                        child.unlink()
                report(f"purged {self.dir} (kept the jar cache)")
            else:
                self._save(state)
            for name in stopped:
                report(f"{name:<9} stopped")
            if not stopped:
                report("nothing of ours was running")
            return stopped

    # -- status --------------------------------------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        state = self._load()
        records = self._records(state)
        rows: list[ComponentStatus] = []

        if DATABASE_ENV in self.external:
            url = self.external[DATABASE_ENV]
            rows.append(ComponentStatus("postgres", url, "external" if postgres.healthy(url) else "unreachable"))
        else:
            info = postgres.running(self.settings)
            if info is None:
                rows.append(ComponentStatus("postgres", str(postgres.data_dir(self.settings)), "stopped"))
            else:
                url = postgres.url(info)
                rows.append(
                    ComponentStatus("postgres", url, "running" if postgres.healthy(url) else "unhealthy", info.pid)
                )

        if KAFKA_ENV in self.external:
            address = self.external[KAFKA_ENV]
            rows.append(ComponentStatus("kafka", address, "external" if kafka.brokers_up(address) else "unreachable"))
        else:
            for node in kafka.nodes(self.settings, int(state.get("brokers", 1))):
                answers = functools.partial(kafka.brokers_up, node.address)
                rows.append(self._process_status(records.get(node.name), node.name, node.address, answers))

        url = self.external.get(REGISTRY_ENV) or registry.url(self.settings)
        if REGISTRY_ENV in self.external:
            rows.append(ComponentStatus("registry", url, "external" if registry.healthy(url) else "unreachable"))
        else:
            rows.append(self._process_status(records.get("registry"), "registry", url, lambda: registry.healthy(url)))
        return rows

    @staticmethod
    def _process_status(
        record: ProcessRecord | None, name: str, endpoint: str, answers: Callable[[], object]
    ) -> ComponentStatus:
        if record is None or record.live() is None:
            return ComponentStatus(name, endpoint, "stopped")
        return ComponentStatus(name, endpoint, "running" if answers() else "unhealthy", record.pid)
