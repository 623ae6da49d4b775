"""Finding Java and Maven, and resolving the stack's jars from Maven Central through the project's pom."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

from deploy.local.errors import StackError

POM = Path(__file__).with_name("pom.xml")
_MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def pom_property(name: str) -> str:
    """A ``<properties>`` value of the stack's pom, the one place component versions are pinned."""
    node = ET.parse(POM).getroot().find(f"m:properties/m:{name}", _MAVEN_NS)
    if node is None or not node.text:
        raise StackError(f"{POM} has no <{name}> property")
    return node.text.strip()


@cache
def java_major(java: Path) -> int:
    """The feature version of a java executable (17 for 17.0.15), 0 when it does not run."""
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _candidates() -> list[Path]:
    found: list[Path] = []
    if home := os.environ.get("JAVA_HOME"):
        found.append(Path(home) / "bin" / "java")
    if on_path := shutil.which("java"):
        found.append(Path(on_path))
    found.extend(sorted(Path("/usr/lib/jvm").glob("*/bin/java"), reverse=True))
    return [path for path in dict.fromkeys(found) if path.exists()]


def find_java(minimum: int, purpose: str, explicit: Path | None = None) -> Path:
    """The first Java at least ``minimum`` (explicit setting, JAVA_HOME, PATH, /usr/lib/jvm), or a StackError."""
    if explicit is not None:
        if java_major(explicit) >= minimum:
            return explicit
        raise StackError(
            f"{explicit} is not a Java {minimum}+ executable (needed for {purpose})",
            hint=f"point it at a JDK {minimum} or newer",
        )
    for java in _candidates():
        if java_major(java) >= minimum:
            return java
    seen = ", ".join(f"{java} ({java_major(java) or '?'})" for java in _candidates()) or "none"
    raise StackError(
        f"{purpose} needs Java {minimum} or newer; found: {seen}",
        hint=f"install a JDK {minimum}+ (Debian: apt-get install openjdk-{minimum}-jre-headless) or set JAVA_HOME",
    )


def resolve(profile: str, cache_dir: Path, marker: Path) -> None:
    """Run the pom's ``profile`` once so that ``marker`` exists under ``cache_dir``; Maven caches in ~/.m2."""
    if marker.exists():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            f"Maven is needed once to fetch the {profile} jars from Maven Central, and `mvn` is not on PATH",
            hint="install Maven (Debian: apt-get install maven), or set KAFKA_BOOTSTRAP_SERVERS / "
            "SCHEMA_REGISTRY_URL to use servers you already run",
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-B", "-q", "-f", str(POM), "-P", profile, "package", f"-Dstack.cache={cache_dir.resolve()}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not marker.exists():
        output = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise StackError(
            f"Maven could not resolve the {profile} jars:\n" + "\n".join(output),
            hint="check that Maven Central is reachable (a proxy goes in ~/.m2/settings.xml), then run again",
        )
