"""The package's face: its licence, changelog, and what installing it loads (nothing into pytest)."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself needs tomli before 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
DIST = "airflow-provider-enso"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_file_is_the_apache_2_text() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    # All nine sections of the terms, then the end marker and the appendix.
    for number in range(1, 10):
        assert re.search(rf"^\s+{number}\. [A-Z]", text, re.MULTILINE), f"section {number} missing"
    assert "END OF TERMS AND CONDITIONS" in text
    assert "http://www.apache.org/licenses/LICENSE-2.0" in text


def test_license_is_an_spdx_expression_with_its_file() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    # PEP 639: a licence expression and licence classifiers may not be given together.
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    # license-files and the string form need setuptools 77.
    assert "setuptools>=77" in _pyproject()["build-system"]["requires"]


def test_installed_metadata_carries_the_licence() -> None:
    metadata = importlib.metadata.metadata(DIST)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in (metadata.get_all("License-File") or [])


def test_installing_the_provider_loads_nothing_into_pytest() -> None:
    assert "pytest11" not in _pyproject()["project"].get("entry-points", {})
    plugins = importlib.metadata.entry_points(group="pytest11")
    assert [ep for ep in plugins if ep.dist and ep.dist.name == DIST] == []
    # The Airflow provider entry point stays.
    providers = importlib.metadata.entry_points(group="apache_airflow_provider")
    assert any(ep.dist and ep.dist.name == DIST for ep in providers)


def test_changelog_has_this_releases_section() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    sections = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert "Unreleased" in sections
    unreleased = text.split("## Unreleased", 1)[1].split("\n## ", 1)[0]
    assert "### Breaking changes" in unreleased
    assert "pytest_plugins" in unreleased
