"""
The README and docs/ pages: their examples run, and their reference tables match the code.

Scripts (fenced ``python`` blocks without a DAG) are executed; DAG files are written into the dags
folder, parsed by a DagBag, and the DAGs that report usage are run with ``dag.test()`` against the
emulator. The tables of parameters, extras, report keys and rejection codes are compared with the
signatures and constants they describe, both ways, so a new argument without docs fails here.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pendulum
import pytest

from enso_provider.decorators.enso_events import _SOURCE_ARGUMENTS, _EnsoEventsDecoratedOperator
from enso_provider.delivery import DeliveryReport
from enso_provider.events import REJECTION_CODES
from enso_provider.exceptions import EnsoConfigError
from enso_provider.get_provider_info import CONN_FIELDS, DEFAULT_BASE_URL
from enso_provider.hooks.enso import EnsoHook
from enso_provider.hooks.retry import RetryPolicy
from enso_provider.operators.batch_events import EnsoBatchEventsOperator
from enso_provider.operators.replay import EnsoReplayRejectedOperator
from tests.support import emulator_as_default

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
TOKEN = "docs-test-token-7731"


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def blocks(page: Path, lang: str = "python") -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text(page), re.DOTALL | re.MULTILINE)


def is_dag(block: str) -> bool:
    return "with DAG(" in block


def section(page: Path, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of the same level."""
    body = text(page)
    level = heading.split(" ", 1)[0]
    start = body.index(f"\n{heading}\n") + len(heading) + 2
    end = body.find(f"\n{level} ", start)
    return body[start:] if end < 0 else body[start:end]


def table(body: str) -> list[list[str]]:
    """The rows of the first Markdown table in ``body`` (header and rule left out)."""
    rows: list[list[str]] = []
    lines = body.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def names(cell: str) -> list[str]:
    return re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", cell)


def parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments of ``cls`` and of its bases in this package (the shared operator base)."""
    found: dict[str, inspect.Parameter] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("enso_provider") or "__init__" not in vars(klass):
            continue
        for name, p in inspect.signature(klass.__init__).parameters.items():
            if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD:
                found[name] = p
    return found


# -- every page ---------------------------------------------------------------------------------------


def test_the_readme_is_short_and_links_every_page() -> None:
    readme = text(README)
    assert len(readme.splitlines()) <= 250
    for page in sorted(DOCS.glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name
    for target in ("docs/performance.md", "CHANGELOG.md", "LICENSE"):
        assert f"({target})" in readme, target
    # Figures only in the performance paragraph, which names the machine and links how to reproduce
    # them; no dated figures or internals on the front page.
    before, _, rest = readme.partition("\n## Performance\n")
    performance, _, after = rest.partition("\n## ")
    assert "| --- |" in performance
    assert "CPU" in performance
    assert "(docs/performance.md)" in performance
    assert not re.search(r"\bevents/s\b|py-spy|cProfile|\d{4}-\d{2}-\d{2}, on ", before + after)
    assert not re.search(r"py-spy|cProfile|\d{4}-\d{2}-\d{2}, on ", performance)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    heading = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", text(page)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if resolved == DOCS / "performance.md" and not resolved.exists():
            continue  # written on another branch; the README test still requires the link
        assert resolved.exists(), f"{page.name}: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), re.MULTILINE)
            assert anchor in {slug(h) for h in headings}, f"{page.name}: {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_path_of_a_machine(page: Path) -> None:
    assert not re.search(r"(?<![\w.])/(work|root|home|tmp)/", text(page)), page.name


# -- connections.md -----------------------------------------------------------------------------------

CONNECTIONS = DOCS / "connections.md"


def test_every_extra_field_is_documented_with_its_default() -> None:
    rows = {names(row[0])[0]: row for row in table(section(CONNECTIONS, "## Extra fields"))}
    hook_overrides = set(parameters(EnsoHook)) - {"enso_conn_id"}
    assert set(rows) == set(CONN_FIELDS) | hook_overrides
    for name, spec in CONN_FIELDS.items():
        default = spec["schema"]["default"]
        cell = rows[name][1]
        if default is None:
            continue
        assert cell.strip("`").startswith(json.dumps(default)), (name, cell)
    policy = RetryPolicy()
    for name in ("backoff_factor", "backoff_max", "retry_after_max", "total_wait_max"):
        assert rows[name][1] == f"{getattr(policy, name):g}", name
    assert rows["deadline"][1] == "`timeout`"


def test_the_documented_defaults_are_the_hook_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DOCS_BARE", json.dumps({"conn_type": "enso", "password": "tok"}))
    s = EnsoHook("docs_bare").settings
    defaults = {name: spec["schema"]["default"] for name, spec in CONN_FIELDS.items()}
    assert s.base_url == DEFAULT_BASE_URL
    assert (s.read_timeout, s.connect_timeout, s.deadline) == (defaults["timeout"], 10, s.read_timeout)
    assert (s.max_response_bytes, s.policy.max_retries) == (defaults["max_response_bytes"], 5)
    assert s.verify is defaults["verify_ssl"] is True
    assert s.policy == RetryPolicy()


def documented_connections() -> list[tuple[str, str]]:
    """``(conn id, value)`` of every ``export AIRFLOW_CONN_...='...'`` line of the page."""
    found = []
    for block in blocks(CONNECTIONS, "bash"):
        for line in block.splitlines():
            if line.startswith("export AIRFLOW_CONN_"):
                assignment = shlex.split(line[len("export ") :])[0]
                name, _, value = assignment.partition("=")
                found.append((name[len("AIRFLOW_CONN_") :].lower(), value))
    return found


def test_the_documented_connections_are_read_by_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    connections = documented_connections()
    assert len(connections) == 4
    settings = {}
    for n, (conn_id, value) in enumerate(connections):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        settings[n] = EnsoHook(conn_id).settings
    token, client, uri, local = settings.values()
    assert token.base_url == DEFAULT_BASE_URL
    assert token.token == "<api token>"
    assert token.client_key is None
    assert client.client_key == "<client key>"
    assert client.client_secret == "<client secret>"
    assert client.token is None
    assert (client.read_timeout, client.deadline, client.policy.max_retries) == (30, 60, 5)
    assert client.policy.total_wait_max == 120
    assert uri.base_url == DEFAULT_BASE_URL
    assert uri.token == "<api token>"
    assert (uri.read_timeout, uri.deadline, uri.policy.max_retries) == (60, 60, 3)
    assert local.base_url == "http://127.0.0.1:5089"
    assert local.token == "test-token"
    assert local.verify is False


@pytest.mark.parametrize(
    ("host", "password"),
    [
        ("https://user:Zq9sEcr3t@api.example.com", "Kp4tokW"),
        ("https://api.example.com?key=1", "Kp4tokW"),
        ("https://api.example.com#frag", "Kp4tokW"),
        ("ftp://api.example.com", "Kp4tokW"),
        ("https://api.example.com", "Kp4tok\nW"),
        ("https://api.example.com", "Kp4tok\u20ac"),
        ("https://api.example.com", ""),
    ],
)
def test_what_the_page_says_is_refused_is_refused(
    monkeypatch: pytest.MonkeyPatch, host: str, password: str
) -> None:
    assert "What is refused" in text(CONNECTIONS)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DOCS_REFUSED", json.dumps({"conn_type": "enso", "host": host, "password": password})
    )
    with pytest.raises(EnsoConfigError) as raised:
        _ = EnsoHook("docs_refused").settings
    message = str(raised.value)
    assert "Zq9sEcr3t" not in message
    assert not password or password not in message


# -- operators.md -------------------------------------------------------------------------------------

OPERATORS = DOCS / "operators.md"


def shown_default(p: inspect.Parameter) -> str:
    if p.default is inspect.Parameter.empty:
        return "(required)"
    if isinstance(p.default, str):
        return f'`"{p.default}"`'
    if isinstance(p.default, tuple):
        return f"`{p.default!r}`"
    return str(p.default)


@pytest.mark.parametrize("operator", [EnsoBatchEventsOperator, EnsoReplayRejectedOperator])
def test_every_parameter_is_documented_with_its_default_and_templating(operator: type) -> None:
    rows = table(section(OPERATORS, f"## `{operator.__name__}`").split("### Parameters", 1)[1])
    documented = {names(row[0])[0]: row for row in rows}
    signature = parameters(operator)
    assert set(documented) == set(signature)
    templated = set(operator.template_fields)  # type: ignore[attr-defined]
    for name, p in signature.items():
        _, default, rendered, meaning = documented[name]
        assert default.startswith(shown_default(p)), (name, default)
        assert meaning
        if name == "events":
            assert rendered == "XComArg only"
        else:
            assert rendered == ("yes" if name in templated else "no"), name
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, name


def test_the_decorator_takes_the_operator_parameters_but_the_sources() -> None:
    rows = table(section(OPERATORS, "## `@task.enso_events`").split("### Parameters", 1)[1])
    documented = {name: row[1] for row in rows for name in names(row[0])}
    expected = set(parameters(EnsoBatchEventsOperator)) - set(_SOURCE_ARGUMENTS)
    assert set(documented) == expected
    templated = set(_EnsoEventsDecoratedOperator.template_fields)
    assert {n for n, t in documented.items() if t == "yes"} == templated & expected
    for source in _SOURCE_ARGUMENTS:
        assert f"`{source}`" in section(OPERATORS, "## `@task.enso_events`")


def test_the_report_keys_are_those_returned() -> None:
    body = section(OPERATORS, "## `EnsoBatchEventsOperator`").split("### The report (XCom)", 1)[1]
    documented = {name for row in table(body) for name in names(row[0])}
    assert documented == {*DeliveryReport().as_dict(), "rejected_records_path"}


# -- rows-to-events.md --------------------------------------------------------------------------------

ROWS = DOCS / "rows-to-events.md"


def test_every_local_rejection_code_is_documented() -> None:
    documented = [names(row[0])[0] for row in table(section(ROWS, "## Validation codes"))]
    assert sorted(documented) == sorted(REJECTION_CODES)


# -- the scripts of every page ------------------------------------------------------------------------

SCRIPTS = [
    pytest.param(block, id=f"{page.name}-{n}")
    for page in PAGES
    if page.name != "testing.md"  # tests/testing/test_docs_testing.py runs those
    for n, block in enumerate(b for b in blocks(page) if not is_dag(b))
]


def test_the_pages_have_scripts() -> None:
    assert len(SCRIPTS) >= 4


@pytest.mark.parametrize("block", SCRIPTS)
def test_the_script_runs(block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A script may point enso_default at an emulator of its own: undo it afterwards.
    monkeypatch.delenv("AIRFLOW_CONN_ENSO_DEFAULT", raising=False)
    exec(compile(block, "<docs>", "exec"), {"__name__": "__docs__"})


# -- the DAGs of every page ---------------------------------------------------------------------------

DAG_BLOCKS = {
    f"docs_{page.stem.replace('-', '_').lower()}_{n}": block
    for page in PAGES
    for n, block in enumerate(b for b in blocks(page) if is_dag(b))
}


@pytest.fixture(scope="module")
def docs_dagbag(airflow_db: Path) -> Iterator[Any]:
    """Every DAG of the pages, written into the session's dags folder and parsed."""
    from tests.airflow_compat import DagBag

    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    written = []
    for name, block in DAG_BLOCKS.items():
        path = folder / f"{name}.py"
        path.write_text("from __future__ import annotations\n\n" + block, encoding="utf-8")
        written.append(path)
    try:
        bags = [DagBag(dag_folder=str(path)) for path in written]
        for bag in bags:
            assert bag.import_errors == {}
        merged = bags[0]
        for bag in bags[1:]:
            merged.dags.update(bag.dags)
        yield merged
    finally:
        for path in written:
            path.unlink()


def test_every_dag_parses(docs_dagbag: Any) -> None:
    assert len(DAG_BLOCKS) >= 4
    assert {
        "usage_hourly_report",
        "docs_daily_api_calls",
        "docs_replay_daily",
        "docs_usage_from_python",
        "docs_usage_late_customers",
        "docs_replay_late_customers",
    } <= set(docs_dagbag.dag_ids)


@pytest.fixture
def rejected_base() -> Iterator[Path]:
    """The base the DAGs read at parse time (the session's), without the docs DAGs' files."""
    base = Path(os.environ["ENSO_REJECTED_RECORDS_BASE"].removeprefix("file://"))

    def clean() -> None:
        for dag_id in ("docs_daily_api_calls", "docs_usage_late_customers", "docs_replay_late_customers"):
            for path in (base / dag_id).glob("*"):
                path.unlink()

    clean()
    yield base
    clean()


def run(dagbag: Any, dag_id: str, logical_date: Any) -> Any:
    from tests.operator.dagrun import run_dag

    return run_dag(dagbag, dag_id, logical_date=logical_date)


@pytest.mark.airflow_db
def test_the_readme_dag_reports_the_hour(
    docs_dagbag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "usage.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE usage_hourly (customer_id TEXT, metric TEXT, quantity NUMERIC, "
            "hour_start TEXT, region TEXT)"
        )
        conn.executemany(
            "INSERT INTO usage_hourly VALUES (?, ?, ?, ?, ?)",
            [
                ("cust_1", "api_calls", 40, "2024-05-01 10:00:00", "eu"),
                ("cust_1", "api_calls", 2, "2024-05-01 10:30:00", "eu"),
                ("cust_2", "api_calls", 7, "2024-05-01 10:00:00", "us"),
                ("cust_2", "api_calls", 9, "2024-05-01 11:00:00", "us"),  # the next hour
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_USAGE_DB", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    with emulator_as_default(monkeypatch, ["cust_1", "cust_2"], TOKEN) as enso:
        result = run(docs_dagbag, "usage_hourly_report", pendulum.datetime(2024, 5, 1, 11, tz="UTC"))
        stored = sorted((e["CustomerEntityId"], e["value"], e["metadata"]["region"]) for e in enso.events)
    assert result.succeeded(), result.task_states
    report = result.report("report_usage")
    assert (report["total"], report["success"], report["failed"], report["invalid"]) == (2, 2, 0, 0)
    assert stored == [("cust_1", 42, "eu"), ("cust_2", 7, "us")]


@pytest.mark.airflow_db
def test_the_xcom_and_decorator_dags_of_the_operators_page_run(
    docs_dagbag: Any, rejected_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulator_as_default(monkeypatch, ["cust_1", "cust_2"], TOKEN) as enso:
        xcom = run(docs_dagbag, "docs_daily_api_calls", pendulum.datetime(2024, 5, 2, 2, tz="UTC"))
        decorated = run(docs_dagbag, "docs_usage_from_python", pendulum.datetime(2024, 5, 1, 11, tz="UTC"))
        stored = sorted((e["CustomerEntityId"], e["value"]) for e in enso.events)
    assert xcom.succeeded()
    assert decorated.succeeded()
    assert xcom.report("report_api_calls")["success"] == 2
    assert decorated.report("usage")["total"] == 1  # the row with 0 calls is filtered by the function
    assert stored == [("cust_1", 42), ("cust_1", 1250), ("cust_2", 310)]
    assert not list((rejected_base / "docs_daily_api_calls").glob("*"))  # nothing failed: no file


@pytest.mark.airflow_db
def test_the_replay_chain_of_the_replays_page_delivers_the_late_customer_exactly(
    docs_dagbag: Any, rejected_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = pendulum.datetime(2024, 5, 2, 2, tz="UTC")  # the interval of 2024-05-01
    with emulator_as_default(monkeypatch, ["cust_1"], TOKEN) as enso:
        first = run(docs_dagbag, "docs_usage_late_customers", day)
        assert first.succeeded()
        assert first.report("report_usage")["errors"] == {"2002": 1}
        (rejected,) = (rejected_base / "docs_usage_late_customers").glob("*.jsonl")
        record = orjson.loads(rejected.read_bytes())
        assert record["code"] == 2002
        assert record["rejectedBy"] == "enso"
        assert '"value":12345678901234.123456' in record["eventJson"]  # every digit kept
        enso.add_customers("cust_late")
        replay = run(docs_dagbag, "docs_replay_late_customers", day)
        late = [e for e in enso.events if e["CustomerEntityId"] == "cust_late"]
    assert replay.succeeded()
    report = replay.report("replay_rejected")
    assert (report["total"], report["success"], report["rejected_records_path"]) == (1, 1, None)
    assert [e["eventId"] for e in late] == [record["eventId"]]
