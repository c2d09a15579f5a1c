"""``python -m tests.fake_elumenta --port 8765 [--scenario demo]``: serve in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fake_elumenta.scenarios import SCENARIOS, apply_scenario
from tests.fake_elumenta.server import FakeElumenta
from tests.fake_elumenta.state import DEFAULT_API_KEY


def main(argv: list[str] | None = None) -> None:
    """Parse the options, start the fake, print how to reach it, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_elumenta", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="default")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--balance", type=int, default=1000)
    parser.add_argument("--plan", default="VIP")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    fake = FakeElumenta(
        args.port,
        host=args.host,
        log_level=args.log_level,
        api_key=args.api_key,
        balance=args.balance,
        plan=args.plan,
    )
    apply_scenario(fake, args.scenario)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with fake:
        print(f"Fake Elumenta API:   {fake.base_url}", flush=True)
        print(f"API key:             {fake.api_key}", flush=True)
        print(f"OpenAI-compatible:   {fake.openai_base_url}", flush=True)
        print(f"Control:             {fake.control_url}  (scenario: {args.scenario})", flush=True)
        stopping.wait()
        print("Stopping.", flush=True)


if __name__ == "__main__":
    main()
