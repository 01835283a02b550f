"""The declared dependencies are exactly what ``enso_provider`` imports (read with ``ast``)."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself needs tomli before 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "enso_provider"

#: Imported only inside code that its caller runs, so the caller has already installed it. Each entry
#: says why; anything else outside the standard library must be declared, core or extra.
#: Each maps to the only file allowed to import it.
PROVIDED_BY_CALLER = {
    # The MySQL connection's own driver, imported only when the connection's cursor is one.
    "MySQLdb": "enso_provider/sources.py",
    "pymysql": "enso_provider/sources.py",
    # The PostgreSQL connection's own driver (psycopg 3 or psycopg2), asked to read JSON only on its cursor.
    "psycopg": "enso_provider/sources.py",
    "psycopg2": "enso_provider/sources.py",
    # The connection form's widgets, asked for by Airflow's UI only.
    "wtforms": "enso_provider/hooks/form.py",
    # The opt-in pytest plugin, loaded by pytest only (pytest_plugins = [...]).
    "pytest": "enso_provider/testing/pytest_plugin.py",
}
#: Import names whose distribution has another name.
DISTRIBUTION_OF = {"airflow": "apache-airflow", "openlineage": "openlineage-python"}
#: Distributions that a declared one brings and guarantees (imported where that one's code path runs).
BROUGHT_BY = {"openlineage-python": "apache-airflow-providers-openlineage"}


@dataclass(frozen=True)
class Import:
    module: str  # the top-level name, or airflow.providers.<name> for a provider
    path: str
    line: int
    top_level: bool  # runs when the module is imported (not in a function, TYPE_CHECKING or try)


def _module_key(name: str) -> str:
    parts = name.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2:
        # airflow.providers.common.sql is apache-airflow-providers-common-sql
        return ".".join(parts[: 4 if parts[2] == "common" and len(parts) > 3 else 3])
    return parts[0]


class _Collector(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.imports: list[Import] = []
        self._guarded = 0  # depth inside functions, TYPE_CHECKING blocks and try bodies

    def _nested(self, node: ast.AST) -> None:
        self._guarded += 1
        self.generic_visit(node)
        self._guarded -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _nested

    def visit_If(self, node: ast.If) -> None:
        test = ast.unparse(node.test)
        if test in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            return  # types only: never imported at run time
        self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        guards_import = any(
            h.type is not None and re.search(r"ImportError|ModuleNotFoundError", ast.unparse(h.type))
            for h in node.handlers
        )
        if guards_import:
            self._guarded += 1
            for child in node.body:
                self.visit(child)
            self._guarded -= 1
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _add(self, name: str, node: ast.stmt) -> None:
        self.imports.append(Import(_module_key(name), self.path, node.lineno, self._guarded == 0))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            if node.module == "airflow.providers":
                for alias in node.names:
                    self._add(f"airflow.providers.{alias.name}", node)
            else:
                self._add(node.module, node)


def third_party_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        collector = _Collector(str(path.relative_to(REPO)))
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found.extend(
            i
            for i in collector.imports
            if i.module.split(".")[0] not in sys.stdlib_module_names and i.module != "enso_provider"
        )
    return found


def distribution(module: str) -> str:
    if module.startswith("airflow.providers."):
        return "apache-airflow-providers-" + "-".join(module.split(".")[2:]).replace("_", "-")
    return DISTRIBUTION_OF.get(module, module)


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return third_party_imports()


def _provided_by_caller(i: Import) -> bool:
    return PROVIDED_BY_CALLER.get(i.module) == i.path


def test_core_dependencies_are_exactly_the_module_level_imports(
    project: dict[str, Any], imports: list[Import]
) -> None:
    declared = {_name(r) for r in project["dependencies"]}
    core = [i for i in imports if i.top_level and not _provided_by_caller(i)]
    imported = {distribution(i.module) for i in core}
    where = {distribution(i.module): f"{i.path}:{i.line}" for i in core}
    missing = {name: where[name] for name in imported - declared}
    assert not missing, f"imported at module level but not a core dependency: {missing}"
    unused = declared - imported
    assert not unused, f"declared but never imported at module level (drop or move to an extra): {unused}"


def test_every_lazy_import_is_declared_or_provided_by_its_caller(
    project: dict[str, Any], imports: list[Import]
) -> None:
    core = {_name(r) for r in project["dependencies"]}
    # The dev extra is the project's own tooling: the package's code cannot count on it.
    extras = {
        _name(r) for name, reqs in project["optional-dependencies"].items() if name != "dev" for r in reqs
    }
    undeclared = {
        f"{i.path}:{i.line}": i.module
        for i in imports
        if not i.top_level
        and not _provided_by_caller(i)
        and distribution(i.module) not in core | extras
        and BROUGHT_BY.get(distribution(i.module)) not in core | extras
    }
    assert not undeclared, f"imported lazily, but in no extra (and not provided by the caller): {undeclared}"


def test_every_extra_is_imported_somewhere(project: dict[str, Any], imports: list[Import]) -> None:
    lazily = {distribution(i.module) for i in imports}
    for extra, requirements in project["optional-dependencies"].items():
        if extra == "dev":
            continue
        for requirement in requirements:
            assert _name(requirement) in lazily, f"extra {extra!r} declares {requirement!r}, never imported"


def test_every_dependency_has_a_lower_bound_and_orjson_an_upper_one(project: dict[str, Any]) -> None:
    for requirement in project["dependencies"]:
        assert ">=" in requirement, f"{requirement!r} has no lower bound"
    orjson = next(r for r in project["dependencies"] if _name(r) == "orjson")
    # The event bytes sent (and kept for replays) are orjson's output: a new major may change them.
    assert "<4" in orjson.replace(" ", "")


def test_the_collector_sees_what_it_must(tmp_path: Path) -> None:
    # The checks above are only as good as the reading: guarded and typed imports are told apart.
    source = (
        "from __future__ import annotations\nimport orjson\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import pendulum\n"
        "try:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
        "def f():\n    from airflow.providers.common.sql.hooks.sql import DbApiHook\n"
        "from airflow.providers import standard\n"
    )
    collector = _Collector("x.py")
    collector.visit(ast.parse(source))
    seen = {(i.module, i.top_level) for i in collector.imports}
    assert seen == {
        ("__future__", True),
        ("orjson", True),
        ("typing", True),
        ("ujson", False),
        ("airflow.providers.common.sql", False),
        ("airflow.providers.standard", True),
    }
