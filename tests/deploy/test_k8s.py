"""deploy/k8s/ checked offline, with no cluster: every manifest against the Kubernetes schemas that
kubernetes-validate ships (strict: an unknown or misspelt field is an error), pinned to one Kubernetes version, and
what a user of the manifests relies on: probes on what each process serves, requests and limits on every container,
the worker pod's `--instance` equal to its StatefulSet ordinal, no secret value written into a manifest.

Each check reports problems as sentences; a copy of the manifests broken in one way each must make the checks fail.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from api.routers.health import router as health_router

KUBERNETES_VERSION = "1.32"
MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SECRET_EXAMPLE = "secret.example.yaml"
PLACEHOLDER = "REPLACE-ME"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}

Doc = dict[str, Any]
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the pure-Python loader is most of a check


def load(directory: Path) -> dict[str, list[Doc]]:
    """Every manifest of ``directory`` (the kustomization's resources and the Secret example), by file name."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = [*kustomization["resources"], SECRET_EXAMPLE]
    return {name: [d for d in yaml.load_all((directory / name).read_text(), Loader=LOADER) if d] for name in files}


def docs(manifests: dict[str, list[Doc]]) -> Iterator[Doc]:
    for found in manifests.values():
        yield from found


def name_of(doc: Doc) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def pod_spec(doc: Doc) -> Doc:
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def containers(doc: Doc, *, init: bool = True) -> Iterator[Doc]:
    spec = pod_spec(doc)
    yield from spec.get("containers", [])
    if init:
        yield from spec.get("initContainers", [])


@functools.cache
def schema_errors(document: str) -> tuple[str, ...]:
    """What the schemas say of one document (as JSON: the cache key, since the broken copies share all but one
    document with the real manifests and kubernetes-validate reloads its definitions on every call)."""
    doc = json.loads(document)
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(str(p) for p in err.path)
        return (f"{name_of(doc)}: {where}: {err.message}",)
    except kubernetes_validate.SchemaNotFoundError as err:
        return (err.message,)  # an unknown kind or apiVersion is not let through
    return ()


def schema_problems(manifests: dict[str, list[Doc]]) -> list[str]:
    return [
        f"{file}: {error}"
        for file, found in manifests.items()
        for doc in found
        for error in schema_errors(json.dumps(doc, sort_keys=True))
    ]


def resource_problems(manifests: dict[str, list[Doc]]) -> list[str]:
    problems = []
    for doc in docs(manifests):
        if doc["kind"] not in WORKLOADS:
            continue
        for container in containers(doc):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(kind, {}))
                if missing:
                    problems.append(f"{name_of(doc)} container {container['name']}: no {kind} of {sorted(missing)}")
    return problems


def env_value(container: Doc, name: str) -> str | None:
    return next((e.get("value") for e in container.get("env", []) if e["name"] == name), None)


def is_api(container: Doc) -> bool:
    return container.get("command", []) + container.get("args", []) == ["api"]


def served_paths(container: Doc) -> set[tuple[str, int]]:
    """(path, port) pairs the container's process answers with 200 while it lives: the API's health routes on its
    port; a worker's or the projector's /metrics on TRADECORE_METRICS_PORT (prometheus-client serves it)."""
    if is_api(container):
        port = int(env_value(container, "TRADECORE_PORT") or 8000)
        return {(route.path, port) for route in health_router.routes}  # type: ignore[attr-defined]
    metrics_port = env_value(container, "TRADECORE_METRICS_PORT")
    return set() if metrics_port is None else {("/metrics", int(metrics_port))}


def probe_problems(manifests: dict[str, list[Doc]]) -> list[str]:
    problems = []
    for doc in docs(manifests):
        if doc["kind"] not in WORKLOADS - {"Job"}:
            continue
        for container in containers(doc, init=False):
            where = f"{name_of(doc)} container {container['name']}"
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            served = served_paths(container)
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http is None:
                    continue
                port = ports.get(http["port"], http["port"])
                if (http["path"], port) not in served:
                    problems.append(f"{where}: {probe} asks {http['path']} on {port}; served: {sorted(served)}")
            if is_api(container):
                if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                    problems.append(f"{where}: liveness is not /healthz")
                if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                    problems.append(f"{where}: readiness is not /readyz")
    return problems


def run_command(container: Doc, env: dict[str, str], tmp: Path) -> list[str]:
    """The argv `tradecore` gets when the container's command runs with ``env``: a stand-in `tradecore` on PATH
    prints its arguments, one a line."""
    stub = tmp / "bin" / "tradecore"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text('#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    stub.chmod(0o755)
    argv = container.get("command", ["tradecore"]) + container.get("args", [])
    done = subprocess.run(
        argv, env={**env, "PATH": f"{stub.parent}:{os.environ['PATH']}"}, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def instance_problems(manifests: dict[str, list[Doc]], tmp: Path) -> list[str]:
    """Every worker pod of a StatefulSet runs `tradecore worker --instance N`, N its ordinal (the pod name's tail),
    taken from the downward API."""
    problems = []
    sets = [d for d in docs(manifests) if d["kind"] == "StatefulSet"]
    if not sets:
        problems.append("no StatefulSet runs the workers")
    for doc in sets:
        for container in containers(doc, init=False):
            where = f"{name_of(doc)} container {container['name']}"
            refs = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}) for e in container.get("env", [])}
            if refs.get("POD_NAME", {}).get("fieldPath") != "metadata.name":
                problems.append(f"{where}: POD_NAME is not the downward API's metadata.name")
            for ordinal in (0, 1, 12):
                pod = f"{doc['metadata']['name']}-{ordinal}"
                argv = run_command(container, {"POD_NAME": pod}, tmp)
                if argv[:1] != ["worker"] or argv.count("--instance") != 1:
                    problems.append(f"{where}: pod {pod} runs tradecore {' '.join(argv)}, not one `worker --instance`")
                elif argv[argv.index("--instance") + 1] != str(ordinal):
                    problems.append(f"{where}: pod {pod} runs tradecore {' '.join(argv)}, not --instance {ordinal}")
    return problems


def secret_problems(manifests: dict[str, list[Doc]]) -> list[str]:
    """Secret values come from the Secret by reference; the Secret example holds placeholders and every key the
    workloads ask for; the ConfigMap holds nothing secret (its DATABASE_URL no password)."""
    problems = []
    example = [d for d in manifests[SECRET_EXAMPLE] if d["kind"] == "Secret"]
    keys = {(d["metadata"]["name"], k) for d in example for k in d.get("stringData", {})}
    for doc in example:
        for key, value in {**doc.get("stringData", {}), **doc.get("data", {})}.items():
            if value != PLACEHOLDER:
                problems.append(f"{SECRET_EXAMPLE}: {key} holds a value, not the placeholder {PLACEHOLDER}")
    for file, found in manifests.items():
        for doc in found:
            if doc["kind"] == "Secret" and file != SECRET_EXAMPLE:
                problems.append(f"{file}: {name_of(doc)}: a Secret in the applied manifests")
            if doc["kind"] == "ConfigMap":
                for key, value in doc.get("data", {}).items():
                    if any(word in key.upper() for word in SECRET_WORDS):
                        problems.append(f"{file}: {name_of(doc)}: {key} looks secret")
                    if key == "DATABASE_URL" and make_url(value).password is not None:
                        problems.append(f"{file}: {name_of(doc)}: DATABASE_URL carries a password")
            if doc["kind"] not in WORKLOADS:
                continue
            for container in containers(doc):
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    secret_like = any(word in env["name"].upper() for word in SECRET_WORDS)
                    if secret_like and ref is None:
                        problems.append(f"{name_of(doc)} container {container['name']}: {env['name']} set inline")
                    if ref is not None and (ref["name"], ref["key"]) not in keys:
                        problems.append(f"{name_of(doc)}: secret key {ref['name']}/{ref['key']} not in the example")
            for volume in pod_spec(doc).get("volumes", []):
                secret = volume.get("secret")
                for item in (secret or {}).get("items", []):
                    if (secret["secretName"], item["key"]) not in keys:
                        problems.append(f"{name_of(doc)}: secret key {secret['secretName']}/{item['key']} unknown")
    return problems


def config_problems(manifests: dict[str, list[Doc]]) -> list[str]:
    """Every ConfigMap a container takes its environment from is among the manifests (a pod naming a missing one
    never starts: CreateContainerConfigError)."""
    maps = {d["metadata"]["name"] for d in docs(manifests) if d["kind"] == "ConfigMap"}
    return [
        f"{name_of(doc)} container {container['name']}: no ConfigMap {source['configMapRef']['name']}"
        for doc in docs(manifests)
        if doc["kind"] in WORKLOADS
        for container in containers(doc)
        for source in container.get("envFrom", [])
        if "configMapRef" in source and source["configMapRef"]["name"] not in maps
    ]


def all_problems(directory: Path, tmp: Path) -> list[str]:
    manifests = load(directory)
    return [
        *schema_problems(manifests),
        *resource_problems(manifests),
        *probe_problems(manifests),
        *instance_problems(manifests, tmp),
        *secret_problems(manifests),
        *config_problems(manifests),
    ]


def test_every_manifest_file_is_checked() -> None:
    checked = set(load(MANIFESTS)) | {"kustomization.yaml"}
    assert {p.name for p in MANIFESTS.glob("*.y*ml")} == checked


def test_the_manifests_pass_every_check(tmp_path: Path) -> None:
    manifests = load(MANIFESTS)
    kinds = {d["kind"] for d in docs(manifests)}
    assert {"StatefulSet", "Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} <= kinds
    assert all_problems(MANIFESTS, tmp_path) == []


def _edit(file: str, change: Callable[[list[Doc]], None]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / file
        found = [d for d in yaml.load_all(path.read_text(), Loader=LOADER) if d]
        change(found)
        path.write_text(yaml.safe_dump_all(found))

    return apply


def _workload(found: list[Doc], kind: str) -> Doc:
    return next(d for d in found if d["kind"] == kind)


def _container(found: list[Doc], kind: str) -> Doc:
    return pod_spec(_workload(found, kind))["containers"][0]  # type: ignore[no-any-return]


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "misspelt field": (
        _edit("api.yaml", lambda f: _workload(f, "Deployment")["spec"].update(replica=3)),
        "Additional properties are not allowed ('replica' was unexpected)",
    ),
    "wrong type": (
        _edit("api.yaml", lambda f: _container(f, "Deployment")["ports"][0].update(containerPort="8000")),
        "'8000' is not of type 'integer'",
    ),
    "unknown kind": (
        _edit("configmap.yaml", lambda f: f[0].update(kind="ConfigMapp")),
        "Couldn't find schema for kind ConfigMapp",
    ),
    "no readiness probe": (
        _edit("projector.yaml", lambda f: _container(f, "Deployment").pop("readinessProbe")),
        "container projector: no readinessProbe",
    ),
    "probe on a path nobody serves": (
        _edit("api.yaml", lambda f: _container(f, "Deployment")["livenessProbe"]["httpGet"].update(path="/health")),
        "livenessProbe asks /health on 8000",
    ),
    "no memory limit": (
        _edit("worker.yaml", lambda f: _container(f, "StatefulSet")["resources"]["limits"].pop("memory")),
        "container worker: no limits of ['memory']",
    ),
    "fixed instance": (
        _edit("worker.yaml", lambda f: _container(f, "StatefulSet").update(command=["tradecore", "worker"])),
        "not one `worker --instance`",
    ),
    "instance off by one": (
        _edit(
            "worker.yaml",
            lambda f: _container(f, "StatefulSet").update(
                command=["/bin/sh", "-c", 'exec tradecore worker --instance "$(( ${POD_NAME##*-} + 1 ))"']
            ),
        ),
        "not --instance 0",
    ),
    "secret inline": (
        _edit(
            "api.yaml",
            lambda f: _container(f, "Deployment")["env"].append({"name": "TRADECORE_JWT_SECRET", "value": "x" * 32}),
        ),
        "TRADECORE_JWT_SECRET set inline",
    ),
    "ConfigMap renamed": (
        _edit("configmap.yaml", lambda f: f[0]["metadata"].update(name="tradecore-settings")),
        "no ConfigMap tradecore-config",
    ),
    "password in the ConfigMap's URL": (
        _edit("configmap.yaml", lambda f: f[0]["data"].update(DATABASE_URL="postgresql://u:hunter2@db/tradecore")),
        "DATABASE_URL carries a password",
    ),
    "value in the Secret example": (
        _edit(SECRET_EXAMPLE, lambda f: f[0]["stringData"].update(PGPASSWORD="hunter2")),
        "PGPASSWORD holds a value",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_manifest_fails_the_checks(breakage: str, tmp_path: Path) -> None:
    broken = tmp_path / "k8s"
    shutil.copytree(MANIFESTS, broken)
    breaks, expected = BREAKAGES[breakage]
    breaks(broken)
    problems = all_problems(broken, tmp_path)
    assert any(expected in p for p in problems), problems


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (its built-in kustomize) is not installed")
def test_the_kustomization_renders_valid_manifests(tmp_path: Path) -> None:
    """What `kubectl apply -k` would send: the kustomization's namespace, image and replicas applied."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "all.yaml").write_text(rendered)
    manifests = {
        "all.yaml": [d for d in yaml.load_all(rendered, Loader=LOADER) if d],
        SECRET_EXAMPLE: load(MANIFESTS)[SECRET_EXAMPLE],
    }
    assert schema_problems(manifests) == []
    assert instance_problems(manifests, tmp_path) == []
    images = {c["image"] for d in docs(manifests) if d["kind"] in WORKLOADS for c in containers(d)}
    assert images == {"tradecore:local"}
    assert {d["metadata"].get("namespace") for d in manifests["all.yaml"]} == {"tradecore"}
