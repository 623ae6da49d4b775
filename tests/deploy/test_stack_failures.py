"""Failures of `stack up` say what is wrong and what to do."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from deploy.local import java, kafka
from deploy.local.errors import StackError
from deploy.local.process import ProcessRecord, terminate
from deploy.local.settings import StackSettings
from deploy.local.stack import LocalStack
from tests.support.ports import free_port_block


def scratch_settings(tmp_path: Path) -> StackSettings:
    base = free_port_block((0, 1, 300, 301))
    return StackSettings(
        stack_dir=tmp_path / ".stack",
        kafka_port=base,
        registry_port=base + 300,
        registry_management_port=base + 301,
    )


@pytest.mark.integration
def test_a_taken_kafka_port_is_named_with_the_setting_that_moves_it(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path)
    stack = LocalStack(settings, environ={})
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.kafka_port))
        squatter.listen()
        try:
            with pytest.raises(StackError) as refused:
                stack.up(report=lambda _: None)
        finally:
            stack.down(report=lambda _: None)
    message = str(refused.value)
    assert f"port {settings.kafka_port} is taken by pid {os.getpid()}" in message
    assert "TRADECORE_KAFKA_PORT" in message and "KAFKA_BOOTSTRAP_SERVERS" in message


def test_only_a_one_or_three_broker_cluster_is_offered(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="--brokers must be 1 or 3"):
        LocalStack(scratch_settings(tmp_path), environ={}).up(brokers=2, report=lambda _: None)


def test_missing_maven_on_first_fetch_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn here
    with pytest.raises(StackError) as refused:
        java.resolve("kafka", tmp_path / "cache", tmp_path / "cache" / "never-there.jar")
    assert "Maven is needed once" in str(refused.value)
    assert "apt-get install maven" in str(refused.value)


def test_too_old_java_names_the_version_needed(tmp_path: Path) -> None:
    with pytest.raises(StackError) as refused:
        java.find_java(99, "Something futuristic")
    assert "needs Java 99 or newer" in str(refused.value)
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(StackError, match="is not a Java 21\\+ executable"):
        java.find_java(21, "the registry", fake)


def test_a_recorded_pid_now_owned_by_another_program_is_not_ours() -> None:
    me = psutil.Process()
    assert ProcessRecord("x", me.pid, me.create_time(), "log", tuple(me.cmdline())).live() is not None
    assert ProcessRecord("x", me.pid, me.create_time(), "log", ("/usr/bin/java", "-jar", "other.jar")).live() is None
    # Records written before the command line was kept: the start time decides.
    assert ProcessRecord("x", me.pid, me.create_time(), "log").live() is not None
    assert ProcessRecord("x", me.pid, me.create_time() - 3600, "log").live() is None


def test_a_process_that_is_not_ours_or_gone_says_why() -> None:
    """What a failed start-up reports: the stack saw no process of ours, and why."""
    me = psutil.Process()
    assert ProcessRecord("x", me.pid, me.create_time(), "log", tuple(me.cmdline())).gone() is None
    other = ProcessRecord("x", me.pid, me.create_time(), "log", ("/usr/bin/java", "-jar", "other.jar")).gone()
    assert other is not None and other.startswith(f"pid {me.pid} runs another command: ") and "python" in other
    assert ProcessRecord("x", 2**22 - 1, 1.0, "log", ("java",)).gone() == f"pid {2**22 - 1} has exited"


def test_a_process_caught_inside_execve_is_ours_by_its_start_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw a freshly spawned registry taken for 'another command' because its command line read empty mid-exec."""
    me = psutil.Process()
    monkeypatch.setattr(psutil.Process, "cmdline", lambda self: [])
    assert ProcessRecord("x", me.pid, me.create_time(), "log", ("java", "-jar", "registry.jar")).gone() is None
    assert ProcessRecord("x", me.pid, me.create_time() - 3600, "log", ("java",)).gone() == (
        f"pid {me.pid} is another process (started at another time)"
    )


def test_a_process_of_ours_is_still_ours_after_the_clock_moves() -> None:
    """The wall clock stepped by an hour moves every process's reported start time by as much."""
    me = psutil.Process()
    assert ProcessRecord("x", me.pid, me.create_time() - 3600, "log", tuple(me.cmdline())).live() is not None


def test_stale_pid_records_are_reported_stopped_not_running(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path)
    settings.stack_dir.mkdir(parents=True)
    dead = {"name": "kafka-1", "pid": 2**22 - 1, "create_time": 1.0, "log": "x"}
    (settings.stack_dir / "state.json").write_text(json.dumps({"brokers": 1, "processes": {"kafka-1": dead}}))
    rows = {row.name: row.state for row in LocalStack(settings, environ={}).status()}
    assert rows == {"postgres": "stopped", "kafka-1": "stopped", "registry": "stopped"}


def test_kafka_data_of_another_cluster_is_refused_with_a_purge_hint(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path)
    node = kafka.nodes(settings, 1)[0]
    (node.home / "data").mkdir(parents=True)
    (node.home / "data" / "meta.properties").write_text("version=1\ncluster.id=someone-elses\nnode.id=1\n")
    with pytest.raises(StackError) as refused:
        kafka.format_storage(settings, node, [node], kafka.new_cluster_id())
    assert "holds data of another Kafka cluster" in str(refused.value)
    assert "stack down --purge" in str(refused.value)


@pytest.mark.integration
def test_a_cluster_id_that_starts_with_a_dash_formats_storage(tmp_path: Path) -> None:
    # Kafka's tools would read "-t -Xy..." as an option; a random id starts with "-" one time in 64.
    settings = StackSettings()  # the project's own jar cache, fetched by `stack up`
    node = kafka.KafkaNode(node_id=1, client_port=1, controller_port=2, home=tmp_path / "node-1")
    kafka.format_storage(settings, node, [node], "-dashed-id-0123456789")
    assert kafka.formatted_cluster_id(node) == "-dashed-id-0123456789"
    assert not any(kafka.new_cluster_id().startswith("-") for _ in range(2_000))


def test_a_corrupt_state_file_is_named(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path)
    settings.stack_dir.mkdir(parents=True)
    (settings.stack_dir / "state.json").write_text("{not json")
    with pytest.raises(StackError, match=r"state\.json is corrupt"):
        LocalStack(settings, environ={}).status()


@pytest.mark.integration
def test_an_external_kafka_that_does_not_answer_is_reported(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path).model_copy(update={"startup_timeout_s": 2.0})
    closed = free_port_block((0,))
    stack = LocalStack(settings, environ={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}"})
    try:
        with pytest.raises(StackError, match="KAFKA_BOOTSTRAP_SERVERS does not answer"):
            stack.up(report=lambda _: None)
    finally:
        stack.down(report=lambda _: None)


def _sleeper(ignores_sigterm: bool) -> tuple[subprocess.Popen[str], ProcessRecord]:
    """A process that sleeps, ready once it said so; one that ignores SIGTERM stands for a node that will not stop."""
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignores_sigterm else ""
    code = f"import signal, time\n{ignore}print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    me = psutil.Process(proc.pid)
    return proc, ProcessRecord(f"sleeper-{proc.pid}", proc.pid, me.create_time(), "log", tuple(me.cmdline()))


def test_the_last_node_still_stopping_once_its_peers_are_gone_is_killed_without_waiting_out_the_grace() -> None:
    """A cluster's node whose shutdown waits on a quorum its peers took with them (`stack down` of three brokers)."""
    started = [_sleeper(False), _sleeper(False), _sleeper(True)]
    t0 = time.monotonic()
    stopped = terminate([record for _, record in started], grace_s=30.0, alone_s=0.5)
    assert sorted(stopped) == sorted(record.name for _, record in started)
    assert time.monotonic() - t0 < 5.0  # not the 30 s of grace: the one ignoring SIGTERM was killed
    assert [record.live() for _, record in started] == [None, None, None]
    for proc, _ in started:
        proc.communicate(timeout=5)  # (reaped by terminate: only settles the Popen and its pipe)


def test_a_process_stopped_alone_is_given_its_whole_grace() -> None:
    proc, record = _sleeper(True)
    t0 = time.monotonic()
    terminate([record], grace_s=1.5, alone_s=0.2)
    assert time.monotonic() - t0 >= 1.5  # (a single broker is not waiting on peers)
    assert record.live() is None
    proc.communicate(timeout=5)
