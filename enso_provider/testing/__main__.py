"""
Run the Enso emulator in the foreground.

``python -m enso_provider.testing --customers c1,c2 --token demo`` binds a free port
(``--port`` for a fixed one), prints one line,
``Enso emulator listening on http://127.0.0.1:40213 (customers: 2)``, and serves until
Ctrl-C or SIGTERM, then exits with status 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from enso_provider.testing.emulator import EnsoEmulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m enso_provider.testing", description="Serve a local emulator of the Enso API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    # Not 8080: that is Airflow's api-server, which a user testing a DAG is likely to run beside it.
    parser.add_argument(
        "--port", type=int, default=0, help="port to bind (default: 0, a free one; the banner names it)"
    )
    parser.add_argument("--customers", default="", help="comma-separated customer entity ids that exist")
    parser.add_argument(
        "--any-customer", action="store_true", help="every non-empty customer entity id exists"
    )
    parser.add_argument("--token", default=None, help="a static Bearer token to accept")
    parser.add_argument("--client-key", default=None, help="client key accepted by /auth/system-login")
    parser.add_argument("--client-secret", default=None, help="client secret that goes with --client-key")
    parser.add_argument("--token-ttl", type=float, default=3600, help="lifetime of issued tokens, seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every batch request")
    parser.add_argument("--no-store", action="store_true", help="keep only event ids and counts, not events")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Parse the arguments, serve until SIGINT or SIGTERM, and return the exit status.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    """
    args = _parser().parse_args(argv)
    if (args.client_key is None) != (args.client_secret is None):
        _parser().error("--client-key and --client-secret go together")
    customers = [c.strip() for c in args.customers.split(",") if c.strip()]
    emulator = EnsoEmulator(
        customers=customers,
        any_customer=args.any_customer,
        token=args.token,
        client_key=args.client_key,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        store_events=not args.no_store,
        host=args.host,
        port=args.port,
        latency=args.latency,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        emulator.start()
    except OSError as exc:
        print(f"Enso emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    # Credentials are never printed, not even the ones given on the command line.
    known = "any" if args.any_customer else len(customers)
    print(f"Enso emulator listening on {emulator.url} (customers: {known})", flush=True)
    try:
        # A timed wait, so the signal handler's flag is seen promptly on every platform.
        while not stop.wait(0.1):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
