"""Migrations: a blank database migrates to exactly the expected schema on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from playground.errors import ConfigError
from playground.store import (
    Store,
    StoreRecorder,
    create_store_engine,
    eval_models,  # noqa: F401  (registers the 0002 tables on Base)
    hosted_models,  # noqa: F401  (registers the 0004 tables on Base)
    open_store,
)
from playground.store.db import MIGRATIONS_DIR, head_revision, migrate_with_alembic
from playground.store.eval_models import BatchCellRow
from playground.store.fresh import SNAPSHOT, create_from_snapshot, stored_row_adder
from playground.store.models import Base, Comparison, UsageRollup, UsageTiming
from playground.store.rollups import build_sqlite_row_adder, sqlite_row_adder
from tests.evaluation_fixtures import plan
from tests.store_fixtures import (
    Outcome,
    make_request,
    postgres_schema_url,
    record_run,
    seed_comparison,
    seed_result,
)

ROOT = Path(__file__).resolve().parents[1]

EXPECTED_COLUMNS: dict[str, list[tuple[str, bool]]] = {
    "comparisons": [
        ("id", False),
        ("created_utc", False),
        ("owner", True),
        ("title", False),
        ("system_prompt", False),
        ("messages_json", False),
        ("params_json", False),
        ("note", False),
        ("use_cache", False),
        ("prompt_text", False),
        ("prompt_hash", False),
        ("deleted_utc", True),
        ("workspace_id", True),
        ("visibility", False),
        ("share_token", True),
        ("batch_id", True),
    ],
    "comparison_tags": [("comparison_id", False), ("tag", False)],
    "results": [
        ("id", False),
        ("comparison_id", False),
        ("position", False),
        ("provider", False),
        ("model", False),
        ("target_params_json", True),
        ("params_json", False),
        ("request_hash", False),
        ("status", False),
        ("content", False),
        ("chars", False),
        ("chars_per_s", True),
        ("generation_id", True),
        ("tokens_used", True),
        ("balance_remaining", True),
        ("price_tokens", True),
        ("latency_ms", True),
        ("ttft_ms", True),
        ("error_code", True),
        ("error_message", True),
        ("cached", False),
        ("writer", True),
        ("created_utc", False),
        ("started_utc", True),
        ("finished_utc", True),
        ("updated_utc", False),
        ("truncated", False),
    ],
    "prompt_templates": [
        ("id", False),
        ("name", False),
        ("owner", True),
        ("created_utc", False),
        ("workspace_id", True),
        ("visibility", False),
    ],
    "template_versions": [
        ("id", False),
        ("template_id", False),
        ("version", False),
        ("system_prompt", False),
        ("user_prompt", False),
        ("variables_json", False),
        ("note", False),
        ("created_utc", False),
    ],
    "datasets": [
        ("id", False),
        ("name", False),
        ("owner", True),
        ("columns_json", False),
        ("rows_json", False),
        ("row_count", False),
        ("created_utc", False),
        ("workspace_id", True),
        ("visibility", False),
    ],
    "eval_batches": [
        ("id", False),
        ("title", False),
        ("owner", True),
        ("dataset_id", True),
        ("status", False),
        ("spec_json", False),
        ("budget_tokens", True),
        ("created_utc", False),
        ("updated_utc", False),
        ("finished_utc", True),
        ("writer", True),
        ("workspace_id", True),
        ("visibility", False),
        ("execution", False),
        ("heartbeat_utc", True),
        ("status_message", True),
    ],
    "batch_cells": [
        ("id", False),
        ("batch_id", False),
        ("template_version_id", False),
        ("row_index", False),
        ("provider", False),
        ("model", False),
        ("status", False),
        ("attempts", False),
        ("result_id", True),
        ("passed", True),
        ("assertions_json", True),
        ("error_message", True),
        ("updated_utc", False),
        ("claimed_by", True),
        ("heartbeat_utc", True),
        ("judge_tokens", True),
        ("judged_utc", True),
    ],
    "ratings": [
        ("id", False),
        ("result_id", False),
        ("rater", False),
        ("kind", False),
        ("value", True),
        ("note", True),
        ("created_utc", False),
    ],
    "pairwise_votes": [
        ("id", False),
        ("result_a_id", False),
        ("result_b_id", False),
        ("winner", False),
        ("rater", False),
        ("created_utc", False),
    ],
    "users": [
        ("id", False),
        ("subject", False),
        ("email", True),
        ("display_name", False),
        ("role", False),
        ("disabled", False),
        ("daily_budget_tokens", True),
        ("monthly_budget_tokens", True),
        ("requests_per_minute", True),
        ("api_key_encrypted", True),
        ("api_key_hint", True),
        ("created_utc", False),
        ("last_seen_utc", True),
    ],
    "workspaces": [("id", False), ("name", False), ("created_utc", False)],
    "workspace_members": [("workspace_id", False), ("user_id", False)],
    "audit_events": [
        ("id", False),
        ("created_utc", False),
        ("actor", True),
        ("action", False),
        ("target", True),
        ("details_json", False),
    ],
    "usage_rollups": [
        ("day", False),
        ("model", False),
        ("provider", False),
        ("owner", False),
        ("shared_workspace", False),
        ("status", False),
        ("cached", False),
        ("results", False),
        ("tokens_spent", False),
        ("output_chars", False),
        ("latency_n", False),
        ("latency_sum", False),
        ("ttft_n", False),
        ("ttft_sum", False),
        ("speed_n", False),
        ("speed_sum", False),
    ],
    "usage_timings": [
        ("day", False),
        ("model", False),
        ("provider", False),
        ("owner", False),
        ("shared_workspace", False),
        ("status", False),
        ("cached", False),
        ("measure", False),
        ("period", False),
        ("low", False),
        ("counts", False),
    ],
}
EXPECTED_INDEXES: dict[str, dict[str, list[str]]] = {
    "comparisons": {
        "ix_comparisons_created_utc": ["created_utc"],
        "ix_comparisons_owner_created_utc": ["owner", "created_utc"],
        "ix_comparisons_prompt_hash": ["prompt_hash"],
        "ix_comparisons_deleted_utc": ["deleted_utc"],
        "ix_comparisons_workspace": ["workspace_id"],
        "ix_comparisons_share_token": ["share_token"],
        "ix_comparisons_batched": ["id", "batch_id"],
        "ix_comparisons_batch_id": ["batch_id", "id"],
    },
    "comparison_tags": {"ix_comparison_tags_tag": ["tag", "comparison_id"]},
    "results": {
        "ix_results_comparison_id": ["comparison_id", "position"],
        "ix_results_model_status_created": [
            "model",
            "status",
            "created_utc",
            "id",
            "comparison_id",
        ],
        "ix_results_model_created": ["model", "created_utc", "id", "comparison_id"],
        "ix_results_status_created": ["status", "created_utc", "id", "comparison_id"],
        "ix_results_created": ["created_utc", "id", "comparison_id"],
        "ix_results_request_hash": ["request_hash"],
        "ix_results_balance": ["provider", "created_utc", "id"],
        "ix_results_stats": [
            "cached",
            "model",
            "provider",
            "status",
            "created_utc",
            "tokens_used",
            "chars",
            "latency_ms",
            "ttft_ms",
            "chars_per_s",
        ],
    },
    "prompt_templates": {
        "ix_prompt_templates_owner_name": ["owner", "name"],
        "ix_prompt_templates_workspace": ["workspace_id"],
    },
    "template_versions": {"ix_template_versions_template_version": ["template_id", "version"]},
    "datasets": {
        "ix_datasets_owner_created": ["owner", "created_utc"],
        "ix_datasets_workspace": ["workspace_id"],
    },
    "eval_batches": {
        "ix_eval_batches_owner_created": ["owner", "created_utc"],
        "ix_eval_batches_workspace": ["workspace_id"],
    },
    "batch_cells": {
        "ix_batch_cells_identity": [
            "batch_id",
            "template_version_id",
            "row_index",
            "provider",
            "model",
        ],
        "ix_batch_cells_batch_status": ["batch_id", "status"],
        "ix_batch_cells_result_id": ["result_id"],
        "ix_batch_cells_judged_utc": ["judged_utc"],
    },
    "ratings": {"ix_ratings_result_id": ["result_id"]},
    "pairwise_votes": {
        "ix_pairwise_votes_result_a": ["result_a_id"],
        "ix_pairwise_votes_result_b": ["result_b_id"],
    },
    "users": {"ix_users_subject": ["subject"]},
    "workspaces": {"ix_workspaces_name": ["name"]},
    "workspace_members": {"ix_workspace_members_user": ["user_id"]},
    "audit_events": {
        "ix_audit_events_created": ["created_utc"],
        "ix_audit_events_actor_created": ["actor", "created_utc"],
    },
    "usage_rollups": {},
    "usage_timings": {},
}
SQLITE_FTS_TABLES = {"results_fts", "comparisons_fts"}
PG_FTS_INDEXES = {"results": "ix_results_content_fts", "comparisons": "ix_comparisons_prompt_fts"}


def _is_fts_shadow(name: str) -> bool:
    return any(name == t or name.startswith(f"{t}_") for t in SQLITE_FTS_TABLES)


def test_blank_database_migrates_to_exactly_the_expected_schema(store: Store) -> None:
    inspector = sa.inspect(store.engine)
    tables = {t for t in inspector.get_table_names() if not _is_fts_shadow(t)}
    assert tables == {*EXPECTED_COLUMNS, "alembic_version"}
    for table, expected in EXPECTED_COLUMNS.items():
        columns = [(c["name"], c["nullable"]) for c in inspector.get_columns(table)]
        assert columns == expected, table
        indexes = {
            i["name"]: i["column_names"]
            for i in inspector.get_indexes(table)
            if i["name"] not in PG_FTS_INDEXES.values()
        }
        assert indexes == EXPECTED_INDEXES[table], table
    assert inspector.get_pk_constraint("comparison_tags")["constrained_columns"] == [
        "comparison_id",
        "tag",
    ]
    for table in ("comparison_tags", "results"):
        (foreign_key,) = inspector.get_foreign_keys(table)
        assert foreign_key["referred_table"] == "comparisons"
        assert foreign_key["options"].get("ondelete") == "CASCADE"
    cell_keys = {
        fk["referred_table"]: fk["options"].get("ondelete")
        for fk in inspector.get_foreign_keys("batch_cells")
    }
    assert cell_keys == {
        "eval_batches": "CASCADE",
        "template_versions": None,
        "results": "SET NULL",
    }


def test_migrated_schema_matches_the_orm_models(store: Store) -> None:
    def include(_obj: object, name: str | None, type_: str, *_: object) -> bool:
        # Full-text search objects are backend-specific and not in the ORM metadata.
        if type_ == "table" and name is not None and _is_fts_shadow(name):
            return False
        return not (type_ == "index" and name in PG_FTS_INDEXES.values())

    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_full_text_search_objects_exist_for_the_backend(store: Store) -> None:
    with store.engine.connect() as connection:
        if store.backend == "sqlite":
            names = set(
                connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')"
                ).scalars()
            )
            assert names >= SQLITE_FTS_TABLES
            assert {
                f"{t}_fts_{op}"
                for t in ("results", "comparisons")
                for op in ("insert", "update", "delete")
            } <= names
        else:
            for table, index in PG_FTS_INDEXES.items():
                definition = connection.execute(
                    sa.text(
                        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                        " AND tablename = :t AND indexname = :i"
                    ),
                    {"t": table, "i": index},
                ).scalar_one()
                assert "USING gin" in definition
                assert "to_tsvector('simple'::regconfig" in definition


def test_reopening_is_a_no_op_at_head(store_url: str) -> None:
    open_store(store_url).close()
    store = open_store(store_url)
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0014"
    store.close()


def test_reopening_at_head_loads_neither_alembic_nor_the_migration_scripts(
    store_url: str,
) -> None:
    open_store(store_url).close()
    script = (
        "import sys\n"
        "from playground.store import open_store\n"
        f"open_store({store_url!r}).close()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('alembic', 'playground.store.mig'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_head_revision_read_from_the_file_names_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    assert head_revision() == scripts.get_current_head()
    for script in scripts.walk_revisions():
        assert Path(script.path).name[:4] == script.revision


def _open_and_close(url: str) -> str:
    store = open_store(url)
    store.close()
    return "ok"


def test_processes_starting_together_migrate_once(store_url: str) -> None:
    with ProcessPoolExecutor(max_workers=4, mp_context=get_context("spawn")) as pool:
        assert list(pool.map(_open_and_close, [store_url] * 4)) == ["ok"] * 4


def test_sqlite_file_and_directory_are_created_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "history.sqlite3"
    store = open_store(f"sqlite:///{path}")
    with store.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 30_000
    store.close()
    assert path.exists()


def _sqlite_schema(path: Path) -> dict[str, object]:
    """Everything that makes up a SQLite history's schema, and the rows SQLite or Alembic
    put in it (the revision, the full-text indexes' own state)."""
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            query = connection.exec_driver_sql
            return {
                "objects": sorted(
                    tuple(row)
                    for row in query("SELECT type, name, tbl_name, sql FROM sqlite_master")
                ),
                "revision": query("SELECT version_num FROM alembic_version").scalars().all(),
                "user_version": query("PRAGMA user_version").scalar(),
                "fts": {
                    table: [tuple(row) for row in query(f"SELECT * FROM {table}")]
                    for table in (
                        f"{fts}_{part}" for fts in SQLITE_FTS_TABLES for part in ("config", "data")
                    )
                },
            }
    finally:
        engine.dispose()


def test_a_new_sqlite_history_has_exactly_the_schema_and_revision_migrations_give(
    tmp_path: Path,
) -> None:
    """A new SQLite file is built from the schema snapshot (store/fresh.py); this fails
    when a migration was added or changed without ``make sqlite-schema``."""
    migrated = create_store_engine(f"sqlite:///{tmp_path / 'migrated.sqlite3'}")
    migrate_with_alembic(migrated)
    migrated.dispose()
    open_store(f"sqlite:///{tmp_path / 'new.sqlite3'}").close()
    expected = _sqlite_schema(tmp_path / "migrated.sqlite3")
    assert expected["revision"] == [head_revision()]
    assert json.loads(SNAPSHOT.read_text(encoding="utf-8"))["revision"] == head_revision()
    assert _sqlite_schema(tmp_path / "new.sqlite3") == expected


def test_the_rollups_per_connection_statements_stored_with_the_snapshot_are_this_codes() -> None:
    """Every SQLite connection runs the row adder's statements as the snapshot stores them
    (compiling them costs each process ~40 ms); this fails when the rollups' upserts changed
    without ``make sqlite-schema``, which would leave connections adding figures the old way."""
    assert stored_row_adder() == build_sqlite_row_adder()
    assert sqlite_row_adder() == stored_row_adder()


def test_a_new_sqlite_history_is_created_without_loading_alembic(tmp_path: Path) -> None:
    """Alembic and the migration scripts cost a first start (an eval in CI) about
    half a second; a new file needs neither."""
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    script = (
        "import sys\n"
        "from playground.store import open_store\n"
        f"open_store({url!r}).close()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('alembic', 'playground.store.mig'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
    assert _sqlite_schema(tmp_path / "history.sqlite3")["revision"] == [head_revision()]


def test_the_snapshot_is_used_only_on_an_empty_file_and_only_at_its_revision(
    tmp_path: Path,
) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    try:
        assert not create_from_snapshot(engine, "9999")  # a migration newer than the snapshot
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE notes (text TEXT)")
        assert not create_from_snapshot(engine, head_revision())  # not a new database
        assert sa.inspect(engine).get_table_names() == ["notes"]
    finally:
        engine.dispose()


def test_plain_postgresql_url_uses_psycopg() -> None:
    engine = create_store_engine("postgresql://user:secret@localhost/db")
    assert engine.dialect.driver == "psycopg"
    assert "secret" not in repr(Store(engine))


@pytest.mark.parametrize("url", ["mysql://localhost/db", "not a url"])
def test_unsupported_database_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        create_store_engine(url)


def test_cells_judged_before_0007_get_their_judge_spend_from_their_outcomes(
    store_url: str,
) -> None:
    store = open_store(store_url)
    batch_id = plan(store, ["gpt-5-nano"], rows=2)
    judged = [{"kind": "llm_judge", "passed": True, "judge": True, "cost_tokens": 2}]
    with store.session() as session, session.begin():
        first, second = session.scalars(
            sa.select(BatchCellRow).where(BatchCellRow.batch_id == batch_id)
        ).all()
        first.assertions_json = [{"kind": "contains", "passed": True}, *judged]
        second.assertions_json = [{"kind": "contains", "passed": True}]
        graded_at = first.updated_utc
    store.close()
    _downgrade(store_url, "0006")

    store = open_store(store_url)  # back up to head: 0007 fills in the judged cell
    with store.session() as session:
        cells = session.execute(
            sa.select(BatchCellRow.judge_tokens, BatchCellRow.judged_utc)
            .where(BatchCellRow.batch_id == batch_id)
            .order_by(BatchCellRow.row_index)
        ).all()
    store.close()
    assert [tuple(c) for c in cells] == [(2, graded_at), (None, None)]


def test_results_recorded_before_0009_are_back_filled_into_the_usage_rollups(
    store_url: str,
) -> None:
    store = open_store(store_url)
    recorder = StoreRecorder(store.engine)
    record_run(recorder, make_request(("gpt-5", "claude-haiku-4.5")), [Outcome(), Outcome()])
    store.close()
    _downgrade(store_url, "0008")

    store = open_store(store_url)  # back up to head: 0010 counts the two answers
    with store.session() as session:
        rollups = session.execute(
            sa.select(UsageRollup.model, UsageRollup.results, UsageRollup.latency_n).order_by(
                UsageRollup.model
            )
        ).all()
        bins = sum(
            int(t.counts.sum())
            for t in session.scalars(sa.select(UsageTiming).where(UsageTiming.period == "day"))
        )
    store.close()
    assert [tuple(r) for r in rollups] == [("claude-haiku-4.5", 1, 1), ("gpt-5", 1, 1)]
    assert bins == 4  # latency and TTFT of each answer


def test_timing_bins_survive_a_downgrade_to_0009_and_back(store_url: str) -> None:
    store = open_store(store_url)
    record_run(
        StoreRecorder(store.engine),
        make_request(("gpt-5", "claude-haiku-4.5")),
        [Outcome(), Outcome()],
    )
    store.close()
    _downgrade(store_url, "0009")
    engine = create_store_engine(store_url)
    with engine.connect() as connection:
        # 0009's one row per bin: latency and TTFT of each answer.
        bins = connection.exec_driver_sql("SELECT sum(n), count(*) FROM usage_histograms").one()
    engine.dispose()
    assert tuple(bins) == (4, 4)
    store = open_store(store_url)
    with store.session() as session:
        timings = session.scalars(sa.select(UsageTiming)).all()
    store.close()
    days = [t for t in timings if t.period == "day"]
    assert sorted(int(t.counts.sum()) for t in days) == [1, 1, 1, 1]
    assert sorted(int(t.counts.sum()) for t in timings if t.period == "month") == [1, 1, 1, 1]


def _downgrade(store_url: str, revision: str) -> None:
    """Migrate the database at ``store_url`` down to ``revision`` (what an older release
    would find after a restore)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_store_engine(store_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    engine.dispose()


def test_history_indexes_lose_and_regain_comparison_id_across_0011(store_url: str) -> None:
    time_ordered = {
        name: columns
        for name, columns in EXPECTED_INDEXES["results"].items()
        if "created_utc" in columns and name not in ("ix_results_stats", "ix_results_balance")
    }
    assert len(time_ordered) == 4

    def indexes() -> dict[str, list[str]]:
        engine = create_store_engine(store_url)
        found = {
            i["name"]: [str(c) for c in i["column_names"]]
            for i in sa.inspect(engine).get_indexes("results")
            if i["name"] in time_ordered
        }
        engine.dispose()
        return found

    open_store(store_url).close()
    _downgrade(store_url, "0010")
    assert indexes() == {n: c[: c.index("comparison_id")] for n, c in time_ordered.items()}
    open_store(store_url).close()
    assert indexes() == time_ordered


def test_the_balance_index_comes_and_goes_with_0012(store_url: str) -> None:
    def has_index() -> bool:
        engine = create_store_engine(store_url)
        names = {i["name"] for i in sa.inspect(engine).get_indexes("results")}
        engine.dispose()
        return "ix_results_balance" in names

    open_store(store_url).close()
    assert has_index()
    _downgrade(store_url, "0011")
    assert not has_index()
    open_store(store_url).close()
    assert has_index()


@pytest.mark.postgres
def test_the_rollup_function_comes_and_goes_with_0013() -> None:
    # PostgreSQL only: SQLite has no stored functions, and 0013 changes nothing there.
    with postgres_schema_url() as store_url:
        _the_function_comes_and_goes(store_url)


def _the_function_comes_and_goes(store_url: str) -> None:
    def has_function() -> bool:
        engine = create_store_engine(store_url)
        with engine.connect() as connection:
            found = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_proc WHERE proname = 'playground_rollup_add'"
                    " AND pronamespace = current_schema()::regnamespace"
                )
            )
        engine.dispose()
        return bool(found)

    open_store(store_url).close()
    assert has_function()
    _downgrade(store_url, "0012")
    assert not has_function()
    open_store(store_url).close()
    assert has_function()


def test_0014_gives_each_comparison_the_batch_of_its_answers_cells(store_url: str) -> None:
    # History built before 0014: batch comparisons known only through their answers' cells.
    store = open_store(store_url)
    first = plan(store, ["gpt-5-nano", "gpt-5"], rows=1)
    second = plan(store, ["gpt-5-nano"], rows=1)
    with store.session() as session, session.begin():
        cells = {
            (c.batch_id, c.model): c
            for c in session.scalars(
                sa.select(BatchCellRow).where(BatchCellRow.batch_id.in_([first, second]))
            )
        }
        # Answers in both batches' cells (a cached answer of the second one, say): the
        # lowest batch, as History's look-up through the cells showed it.
        both = seed_comparison(session, prompt="both")
        cells[(second, "gpt-5-nano")].result_id = seed_result(session, both, "gpt-5-nano").id
        cells[(first, "gpt-5")].result_id = seed_result(session, both, "gpt-5").id
        only_first = seed_comparison(session, prompt="first")
        cells[(first, "gpt-5-nano")].result_id = seed_result(session, only_first, "gpt-5-nano").id
        plain = seed_comparison(session, prompt="plain")
        seed_result(session, plain, "gpt-5")
        ids = {"both": both.id, "first": only_first.id, "plain": plain.id}
    store.close()
    _downgrade(store_url, "0013")

    store = open_store(store_url)
    with store.session() as session:
        batches = dict(
            session.execute(
                sa.select(Comparison.id, Comparison.batch_id).where(Comparison.id.in_(ids.values()))
            ).all()
        )
    store.close()
    assert {name: batches[i] for name, i in ids.items()} == {
        "both": first,
        "first": first,
        "plain": None,
    }
