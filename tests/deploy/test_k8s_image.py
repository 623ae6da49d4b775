"""The image the manifests and docker-compose.yml run (deploy/Dockerfile) gets every package the project installs:
a package left out of the build context installs without error and fails only when a pod imports it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copied_into_build_stage() -> set[str]:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    build_stage = dockerfile.split("\nFROM ")[1]  # the first stage: the one that installs the project
    copied: set[str] = set()
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", build_stage, flags=re.MULTILINE):
        copied.update(sources.split())
    return copied


def test_the_image_is_built_from_every_package_the_project_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    top_level = {p.rstrip("*") for p in patterns}
    assert all((ROOT / name / "__init__.py").exists() for name in top_level), top_level
    copied = copied_into_build_stage()
    assert top_level <= copied, f"deploy/Dockerfile does not copy {sorted(top_level - copied)}"
    # The build reads the project's metadata, and pyproject names README.md as the package readme.
    assert {"pyproject.toml", "README.md"} <= copied


def test_the_image_installs_the_versions_the_lock_pins() -> None:
    """The image gets what `make test` passed with (make venv installs under requirements.lock), not whatever was
    released since."""
    build_stage = (ROOT / "deploy" / "Dockerfile").read_text().split("\nFROM ")[1]
    assert "requirements.lock" in copied_into_build_stage()
    assert re.search(r"^RUN .*pip install -c requirements\.lock \.$", build_stage, flags=re.MULTILINE), build_stage
