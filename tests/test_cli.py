"""The CLI contract: JSON lines, exit codes, clear usage errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.cli.main import main
from playground.config import Settings

JSON_KEYS = {
    "model",
    "status",
    "content",
    "tokens_used",
    "balance_remaining",
    "latency_ms",
    "ttft_ms",
    "generation_id",
    "truncated",
    "error",
}


@pytest.fixture
def demo_settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        provider="demo",
        demo_time_scale=0.02,
        data_dir=tmp_path,
        elumenta_api_key=None,
    )


def run(argv: list[str], settings: Settings, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, settings=settings, out=out, err=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_json_prints_one_object_per_model_in_order(demo_settings: Settings) -> None:
    argv = ["compare", "-m", "gpt-5-nano", "-m", "gpt-5", "-p", "hello", "--json", "--no-save"]
    code, out, err = run(argv, demo_settings)
    assert code == 0, err
    lines = out.strip().split("\n")
    assert len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [r["model"] for r in rows] == ["gpt-5-nano", "gpt-5"]
    for row in rows:
        assert set(row) == JSON_KEYS
        assert row["status"] == "completed"
        assert row["error"] is None
        assert row["ttft_ms"] < row["latency_ms"]
    assert [r["tokens_used"] for r in rows] == [1, 2]


def test_human_output_streams_lines_and_ends_with_a_table(demo_settings: Settings) -> None:
    code, out, _ = run(["compare", "-m", "gpt-5-nano", "-p", "hi", "--no-save"], demo_settings)
    assert code == 0
    assert "gpt-5-nano │ *Demo mode: simulated answer; no API call was made.*" in out
    assert out.rstrip().split("\n")[-1].startswith("gpt-5-nano  completed")


def test_prompt_from_stdin(demo_settings: Settings) -> None:
    argv = ["compare", "-m", "gpt-5-nano", "-p", "-", "--json", "--no-save"]
    code, out, _ = run(argv, demo_settings, stdin="question from a pipe")
    assert code == 0
    assert "question from a pipe" in json.loads(out)["content"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "-m", "no-such-model", "-p", "hi"], "Unknown model 'no-such-model'"),
        (["compare", "-m", "gpt-5", "-p", "   "], "prompt is empty"),
        (
            ["compare", "-m", "gpt-5", "-p", "hi", "-t", "2.5"],
            "Temperature must be between 0 and 2",
        ),
        (["compare", "-m", "gpt-5", "-p", "hi", "--max-tokens", "0"], "max_tokens"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(
    demo_settings: Settings, argv: list[str], message: str
) -> None:
    code, out, err = run([*argv, "--no-save"], demo_settings)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


def test_argparse_errors_exit_2(demo_settings: Settings) -> None:
    assert run(["compare", "-p", "hi"], demo_settings)[0] == 2
    assert run(["compare", "-m", "x", "-p", "hi", "-t", "warm"], demo_settings)[0] == 2


def test_any_model_not_completed_exits_1(demo_settings: Settings) -> None:
    argv = ["compare", "-m", "gpt-5", "-p", "hi", "--provider", "elumenta", "--json", "--no-save"]
    code, out, _ = run(argv, demo_settings)
    assert code == 1
    row = json.loads(out)
    assert row["status"] == "failed"
    assert row["error"]["code"] == "not_authenticated"


def test_module_entry_point_runs_as_a_process(tmp_path: Path) -> None:
    env = os.environ | {
        "PLAYGROUND_PROVIDER": "demo",
        "PLAYGROUND_DEMO_TIME_SCALE": "0.01",
        "PLAYGROUND_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "compare", "-m", "gpt-5-nano", "-p", "hi", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "completed"
    bad = subprocess.run(
        [sys.executable, "-m", "playground", "compare", "-m", "nope", "-p", "hi"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    env = os.environ | {"PLAYGROUND_PROVIDER": "demo", "PLAYGROUND_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground", "models"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `| head` does once it has read enough
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 128 + 13  # as a Unix tool stopped by SIGPIPE reports
    assert err == b""


# After the CLI's set-up, a write to a socket whose other end has closed (a server that
# dropped an idle connection) must raise, for the HTTP client to handle, not kill the
# process: an eval would vanish mid-run.
_SOCKET_AFTER_CLI = """
import runpy, socket, sys
sys.argv = ["playground", "models"]
try:
    runpy.run_module("playground", run_name="__main__")
except SystemExit:
    pass
ours, theirs = socket.socketpair()
theirs.close()
try:
    for _ in range(4):
        ours.send(b"x" * 65536)
except BrokenPipeError:
    sys.stderr.write("BrokenPipeError raised")
"""


def test_a_write_to_a_closed_connection_raises_instead_of_killing_the_process(
    tmp_path: Path,
) -> None:
    env = os.environ | {"PLAYGROUND_PROVIDER": "demo", "PLAYGROUND_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", _SOCKET_AFTER_CLI],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stderr == "BrokenPipeError raised"


def test_compare_is_recorded_and_history_show_export_read_it_back(
    demo_settings: Settings, tmp_path: Path
) -> None:
    code, out, _ = run(
        ["compare", "-m", "gpt-5-nano", "-m", "gpt-5", "-p", "remember me", "--tag", "t1"],
        demo_settings,
    )
    assert code == 0
    assert "Saved as comparison #1." in out
    code, out, _ = run(["history", "--json"], demo_settings)
    rows = [json.loads(line) for line in out.strip().split("\n")]
    assert {r["model"] for r in rows} == {"gpt-5-nano", "gpt-5"}
    assert all(set(r) == JSON_KEYS | {"comparison_id", "created_at"} for r in rows)
    assert all(r["comparison_id"] == 1 and r["status"] == "completed" for r in rows)
    code, out, _ = run(["history", "--model", "gpt-5", "--json"], demo_settings)
    assert [json.loads(line)["model"] for line in out.strip().split("\n")] == ["gpt-5"]
    code, out, _ = run(["history", "--search", "nothing-like-this"], demo_settings)
    assert "No results match." in out
    code, out, _ = run(["show", "1", "--json"], demo_settings)
    shown = json.loads(out)
    assert shown["messages"] == [{"role": "user", "content": "remember me"}]
    assert shown["tags"] == ["t1"]
    assert [r["model"] for r in shown["results"]] == ["gpt-5-nano", "gpt-5"]
    target = tmp_path / "out.csv"
    code, _, err = run(["export", "--format", "csv", "--output", str(target)], demo_settings)
    assert code == 0 and "Exported 2 results." in err
    assert target.read_text().startswith("comparison_id,")
    code, out, _ = run(["export", "--format", "json", "--tag", "t1"], demo_settings)
    assert len(json.loads(out)) == 2


def test_csv_export_quotes_text_a_spreadsheet_would_run(demo_settings: Settings) -> None:
    formula = '=HYPERLINK("http://evil.test","open me")'
    run(["compare", "-m", "gpt-5-nano", "-p", "hi", "--title", formula], demo_settings)

    code, out, _ = run(["export", "--format", "csv"], demo_settings)

    assert code == 0
    (row,) = csv.DictReader(io.StringIO(out, newline=""))
    assert row["title"] == "'" + formula
    code, out, _ = run(["export", "--format", "json"], demo_settings)
    assert json.loads(out)[0]["title"] == formula


def test_show_of_an_unknown_id_is_a_usage_error(demo_settings: Settings) -> None:
    code, _, err = run(["show", "999"], demo_settings)
    assert code == 2
    assert "No comparison #999." in err


def test_no_save_leaves_history_empty(demo_settings: Settings) -> None:
    run(["compare", "-m", "gpt-5-nano", "-p", "hi", "--no-save"], demo_settings)
    assert run(["history", "--json"], demo_settings)[1] == ""
