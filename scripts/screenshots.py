"""
`make screenshots`: pictures of the provider in a real Airflow 3 UI, for the README.

- ``docs/images/connection-form.png``: Admin -> Connections -> Add Connection, type Enso selected
  (the relabelled standard fields); ``docs/images/connection-form-extra.png``: its extra fields.
- ``docs/images/run-log.png``: the task log of a finished ``enso_usage_sql_hourly`` run, showing the
  operator's report table.

Installs Debian's ``chromium`` when it is missing (apt-get, as root), builds the demo's usage table
(``scripts/demo.py``), starts the Enso emulator and an Airflow API server, DAG processor and scheduler
(``scripts/airflow_server.py``; simple auth manager, everyone admin, so no login), triggers one run of
the hourly SQL example for 2024-05-01 10:00-11:00 UTC, and drives headless Chromium through the
DevTools protocol (a small websocket client) to open the pages and capture them. Everything else lives
in a temporary directory, removed at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.airflow_server import AirflowApiServer, free_port  # noqa: E402
from scripts.demo import CUSTOMERS, HOUR, build_usage_db  # noqa: E402

IMAGES = ROOT / "docs" / "images"
DAG_ID = "enso_usage_sql_hourly"
TASK_ID = "report_usage"
RUN_ID = "enso_screenshot_2024-05-01T10"
#: ``example_dags/enso_usage_sql_hourly.py``'s default for ``ENSO_REJECTED_RECORDS_BASE``, as a path.
REJECTED_DEFAULT = "/tmp/enso/rejected"
WIDTH = 1400
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-allow-origins=*",
]

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something other than None/False; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- Chromium ---------------------------------------------------------------------------------------


def chromium_binary() -> str:
    """The Chromium executable; installs Debian's ``chromium`` package when missing and we are root."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's chromium (apt-get)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "fonts-dejavu-core"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which("chromium")
        if found:
            return found
    raise SystemExit("make screenshots needs Chromium: install the `chromium` package, then run it again.")


class Chromium:
    """Headless Chromium driven through the DevTools protocol over a websocket."""

    def __init__(self, binary: str, profile: Path, width: int = WIDTH, height: int = 900) -> None:
        from websockets.sync.client import connect

        self.port = free_port()
        profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={self.port}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        page = wait_for("Chromium's DevTools endpoint", self._page_target, timeout=30, interval=0.1)
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        )
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.resize(width, height)

    def _page_target(self) -> dict[str, Any] | None:
        if self.process.poll() is not None:
            raise RuntimeError(f"Chromium exited with {self.process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as response:
                targets = json.load(response)
        except OSError:
            return None
        return next((t for t in targets if t.get("type") == "page"), None)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are ignored."""
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def eval(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its (JSON) value."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails'].get('text')}: {expression}")
        return result["result"].get("value")

    def resize(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        wait_for(f"{url} to load", lambda: self.eval("document.readyState") == "complete", timeout=30)

    def type_text(self, text: str) -> None:
        self.send("Input.insertText", text=text)

    def click(self, x: float, y: float) -> None:
        """A real mouse click (press and release) at page coordinates."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def press_enter(self) -> None:
        common = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        self.send("Input.dispatchKeyEvent", type="keyDown", text="\r", **common)
        self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    def screenshot(self, path: Path, clip: str | None = None, margin: int = 16) -> None:
        """
        Save a PNG of the page, or of one element and a margin around it.

        :param path: the file to write.
        :param clip: a JavaScript expression for the element to capture (grown to fit, if needed).
        :param margin: pixels around the element.
        """
        params: dict[str, Any] = {"format": "png"}
        if clip:
            rect = self.eval(f"{clip}.getBoundingClientRect().toJSON()")
            needed = int(rect["y"] + rect["height"] + 2 * margin)
            if needed > self.eval("window.innerHeight"):
                self.resize(self.eval("window.innerWidth"), needed)
                time.sleep(0.3)
            x, y = max(rect["x"] - margin, 0), max(rect["y"] - margin, 0)
            params["clip"] = {
                "x": x,
                "y": y,
                "width": rect["width"] + 2 * margin,
                "height": rect["height"] + 2 * margin,
                "scale": 1,
            }
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"Saved {shown}", flush=True)

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def js(value: str) -> str:
    """A JavaScript string literal."""
    return json.dumps(value)


def click_button(browser: Chromium, label: str, *, exact: bool = False) -> None:
    """Click the first button whose text is (or contains) ``label``; waits for it to appear."""
    test = f"b.innerText.trim() === {js(label)}" if exact else f"b.innerText.includes({js(label)})"
    find = f"[...document.querySelectorAll('button')].find(b => {test})"
    wait_for(f"the {label!r} button", lambda: browser.eval(f"!!{find}"), timeout=30, interval=0.2)
    browser.eval(f"{find}.scrollIntoView({{block: 'center'}})")
    x, y = browser.eval(f"(r => [r.x + r.width / 2, r.y + r.height / 2])({find}.getBoundingClientRect())")
    browser.click(x, y)


# -- the pictures -----------------------------------------------------------------------------------


def connection_form(browser: Chromium, server: AirflowApiServer, standard: Path, extra: Path) -> None:
    """Admin -> Connections -> Add Connection, type Enso: the standard fields, then the extra fields."""
    browser.resize(WIDTH, 1000)
    browser.open(f"{server.url}/connections")
    click_button(browser, "Add Connection")
    dialog = "document.querySelector('[role=dialog]')"
    wait_for("the Add Connection form", lambda: browser.eval(f"!!{dialog}"), timeout=30, interval=0.2)
    browser.eval(f"{dialog}.querySelector('input[name=connection_id]').focus()")
    browser.type_text("enso_default")
    browser.eval(f"{dialog}.querySelector('input[role=combobox]').focus()")
    browser.type_text("Enso")
    wait_for(
        "the Enso option",
        lambda: browser.eval(
            "[...document.querySelectorAll('[role=option]')].some(o => o.innerText === 'Enso')"
        ),
        timeout=15,
        interval=0.2,
    )
    browser.press_enter()
    wait_for(
        "the Enso form",
        lambda: browser.eval(f"{dialog}.innerText.includes('API token or client secret')"),
        timeout=15,
        interval=0.2,
    )
    browser.eval("document.activeElement && document.activeElement.blur()")
    time.sleep(0.5)
    browser.screenshot(standard, clip=dialog)
    # The form's sections are an accordion: opening Extra Fields closes Standard Fields.
    click_button(browser, "Extra Fields", exact=True)  # the typed extra fields, not "Extra Fields JSON"
    wait_for(
        "the extra fields",
        lambda: browser.eval(f"{dialog}.innerText.includes('Verify TLS certificates')"),
        timeout=15,
        interval=0.2,
    )
    browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=1, y=1)  # no hover highlight
    time.sleep(0.7)  # the accordion's animation
    browser.screenshot(extra, clip=dialog)


def run_log(browser: Chromium, server: AirflowApiServer, path: Path) -> None:
    """The finished task's log page, scrolled to the report table."""
    browser.resize(WIDTH, 720)
    browser.open(f"{server.url}/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{TASK_ID}")
    wait_for(
        "the report table in the task log",
        lambda: browser.eval("document.body.innerText.includes('Enso delivery report')"),
        timeout=60,
        interval=0.5,
    )
    time.sleep(1.0)  # let the log viewer finish laying out
    browser.eval(
        """(() => {
            const nodes = [...document.querySelectorAll('body *')].filter(
                n => n.children.length === 0 && n.textContent.includes('Sending usage from'));
            if (nodes.length) nodes[0].scrollIntoView({block: 'start'});
        })()"""
    )
    time.sleep(0.5)
    browser.screenshot(path)


# -- the run ----------------------------------------------------------------------------------------


def trigger_run(server: AirflowApiServer) -> str:
    """Unpause the hourly SQL example, trigger it for the demo hour, and wait until it has finished."""
    dag_url = f"/api/v2/dags/{DAG_ID}"

    def parsed() -> bool:
        return server.request("GET", dag_url).status_code == 200

    wait_for(f"the DAG processor to parse {DAG_ID}", parsed, timeout=120)
    server.request("PATCH", dag_url, json={"is_paused": False}).raise_for_status()
    end = HOUR.replace(hour=HOUR.hour + 1)
    response = server.request(
        "POST",
        f"{dag_url}/dagRuns",
        json={
            "dag_run_id": RUN_ID,
            "logical_date": end.isoformat(),
            "data_interval_start": HOUR.isoformat(),
            "data_interval_end": end.isoformat(),
            "note": "make screenshots",
        },
    )
    response.raise_for_status()
    print(f"Triggered {DAG_ID} for {HOUR:%Y-%m-%d %H:%M}-{end:%H:%M} UTC; waiting for it...", flush=True)

    def finished() -> str | None:
        state = str(server.request("GET", f"{dag_url}/dagRuns/{RUN_ID}").json()["state"])
        return state if state in {"success", "failed"} else None

    state = wait_for("the run to finish", finished, timeout=240, interval=1.0)
    if state != "success":
        raise SystemExit(f"The run ended {state!r}: see the logs under {server.home / 'logs'}")
    return state


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM unwind through the finally blocks: Chromium, Airflow and the emulator stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    binary = chromium_binary()
    work = Path(tempfile.mkdtemp(prefix="enso-screenshots-"))
    usage_db = work / "usage.sqlite"
    build_usage_db(usage_db)

    from enso_provider.testing import EnsoEmulator

    # The example DAG's default rejected-records base (its path shows in the log picture): the file this
    # run writes there is removed at the end, unless it was there before.
    rejected = Path(REJECTED_DEFAULT) / DAG_ID / f"{HOUR:%Y%m%dT%H%M%S}.jsonl"
    created = [d for d in (rejected.parent, *rejected.parent.parents) if not d.exists()]
    rejected_existed = rejected.exists()
    browser: Chromium | None = None
    try:
        with EnsoEmulator(customers=CUSTOMERS, token="demo-token") as enso:
            env = {
                "AIRFLOW_CONN_ENSO_DEFAULT": enso.connection_json(),
                "AIRFLOW_CONN_USAGE_DB": json.dumps({"conn_type": "sqlite", "host": str(usage_db)}),
                "ENSO_REJECTED_RECORDS_BASE": f"file://{REJECTED_DEFAULT}",
                # Only the run triggered below: no scheduled runs of the hourly DAG.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            }
            server = AirflowApiServer(
                work / "airflow", all_admins=True, dags_folder=ROOT / "example_dags", env=env
            )
            print("Starting Airflow (db migrate, api-server, dag-processor, scheduler)...", flush=True)
            with server:
                server.start_component("dag-processor")
                server.start_component("scheduler")
                print(f"Airflow UI on {server.url}", flush=True)
                trigger_run(server)
                print(
                    f"Run finished: {enso.stats['events_stored']} events stored by the emulator.", flush=True
                )
                browser = Chromium(binary, work / "chromium-profile")
                connection_form(
                    browser, server, IMAGES / "connection-form.png", IMAGES / "connection-form-extra.png"
                )
                run_log(browser, server, IMAGES / "run-log.png")
    finally:
        if browser is not None:
            browser.close()
        if not rejected_existed:
            rejected.unlink(missing_ok=True)
        for directory in created:  # deepest first; only the empty ones this run made
            with contextlib.suppress(OSError):
                directory.rmdir()
        if args.keep:
            print(f"Kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
