"""Apicurio Registry 3 as the schema registry: its Confluent-compatible API (``/apis/ccompat/v7``) serves
confluent-kafka's schema-registry client unchanged.

Locally it keeps schemas in an H2 database file under ``.stack/registry`` (they survive `down`/`up`, like the
Kafka log they describe). Its ``kafkasql`` storage — schemas in a Kafka topic, what docker-compose.yml runs — was
the first choice, but on a 2-core machine under load its journal consumer exceeded ``max.poll.interval.ms`` and
the registry stopped answering (seen in the test suite); the file store also starts in ~8 s instead of ~30 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from deploy.local import java
from deploy.local.errors import StackError
from deploy.local.process import ProcessRecord, spawn, tail
from deploy.local.settings import StackSettings

REGISTRY_MIN_JAVA = 21
CCOMPAT_PATH = "/apis/ccompat/v7"


def version() -> str:
    return java.pom_property("apicurio.version")


def url(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.registry_port}{CCOMPAT_PATH}"


def app(settings: StackSettings) -> Path:
    """The registry's Quarkus runner jar, unpacked from Maven Central on first use."""
    cache = settings.stack_dir / "cache"
    home = cache / f"apicurio-{version()}"
    runner = home / "quarkus-run.jar"
    java.resolve("registry", cache, runner)
    return runner


def start(settings: StackSettings) -> ProcessRecord:
    runtime = java.find_java(REGISTRY_MIN_JAVA, "Apicurio Registry 3", settings.registry_java)
    runner = app(settings)
    home = (settings.stack_dir / "registry").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "APICURIO_STORAGE_KIND": "sql",
        "APICURIO_STORAGE_SQL_KIND": "h2",
        "APICURIO_DATASOURCE_URL": f"jdbc:h2:file:{home / 'schemas'}",
        "APICURIO_DATASOURCE_USERNAME": "sa",
        "APICURIO_DATASOURCE_PASSWORD": "sa",  # a local file only this user can read; nothing listens for it
        "QUARKUS_HTTP_HOST": "127.0.0.1",
        "QUARKUS_HTTP_PORT": str(settings.registry_port),
        "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
        "QUARKUS_MANAGEMENT_PORT": str(settings.registry_management_port),
    }
    argv = [str(runtime), f"-Xmx{settings.registry_heap}", "-jar", str(runner.resolve())]
    return spawn("registry", argv, log=home / "registry.log", env=env, cwd=runner.parent)


def healthy(registry_url: str) -> bool:
    """Whether the Confluent-compatible API answers."""
    try:
        return httpx.get(f"{registry_url.rstrip('/')}/subjects", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(settings: StackSettings, record: ProcessRecord, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    log = Path(record.log)
    while time.monotonic() < deadline:
        gone = record.gone()
        if gone is not None:
            raise StackError(f"the schema registry exited during start-up ({gone}); the end of {log}:\n{tail(log)}")
        if healthy(url(settings)):
            return
        time.sleep(0.5)
    raise StackError(
        f"the schema registry did not answer within {timeout_s:.0f}s; see {log}",
        hint="raise TRADECORE_STARTUP_TIMEOUT_S on a slow machine",
    )
