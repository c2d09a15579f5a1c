"""``make run`` serves this machine only: local mode has no sign-in, so anyone who reached the
port could read the history and use the configured key. ``HOST=0.0.0.0`` exposes it on purpose.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.app_process import ROOT
from tests.fake_elumenta.process import free_port, wait_http

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def make_run_command(*variables: str) -> list[str]:
    """The command ``make run`` starts, as make itself expands it (no install step)."""
    dry_run = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/bin/.runtime-installed", "run", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = dry_run.stdout.strip().splitlines()
    return shlex.split(line)


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every local address with a TCP socket listening on ``port`` (Linux's /proc/net)."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            local, state = fields[1], fields[3]
            address, _, port_hex = local.partition(":")
            if state != LISTEN or int(port_hex, 16) != port:
                continue
            # Each 32-bit word of the address is in host (little-endian) byte order.
            words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)]
            found.add(ipaddress.ip_address(b"".join(words)))
    return found


@contextmanager
def app_started_by_make(tmp_path: Path, *variables: str) -> Iterator[int]:
    """The app started with ``make run``'s command on a free port; yields the port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYGROUND_", "STREAMLIT_"))}
    env["PLAYGROUND_DATA_DIR"] = str(tmp_path)
    command = make_run_command(f"PORT={port}", *variables)
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net")
def test_make_run_listens_on_loopback_only(tmp_path: Path) -> None:
    with app_started_by_make(tmp_path) as port:
        addresses = listening_addresses(port)
    assert addresses == {ipaddress.ip_address("127.0.0.1")}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net")
def test_host_exposes_the_app_on_purpose(tmp_path: Path) -> None:
    with app_started_by_make(tmp_path, "HOST=0.0.0.0") as port:
        addresses = listening_addresses(port)
    assert addresses == {ipaddress.ip_address("0.0.0.0")}
