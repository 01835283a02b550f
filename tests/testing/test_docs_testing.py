"""docs/testing.md: its examples run, so they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_scripts_run() -> None:
    scripts = [b for b in BLOCKS if not b.startswith(("# conftest.py", "# test_"))]
    assert len(scripts) == 2
    for block in scripts:
        exec(compile(block, str(DOC), "exec"), {})


def test_the_pytest_example_runs_in_a_project_of_its_own(tmp_path: Path) -> None:
    for block in BLOCKS:
        first = block.splitlines()[0]
        if first in ("# conftest.py", "# test_usage.py"):
            (tmp_path / first[2:]).write_text(block)
    assert {p.name for p in tmp_path.iterdir()} == {"conftest.py", "test_usage.py"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--strict-markers", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_command_line_example_matches_the_banner() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "python -m enso_provider.testing --any-customer --token demo" in text
    assert "(customers: any)" in text
