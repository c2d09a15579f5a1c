"""PostgreSQL: one database function adds a finished answer into the usage rollups.

Every answer's final write kept the rollups in step with two more statements (the
counters' upsert, then the timings'), two round trips to the server. The function
``playground_rollup_add(row, sign, timed)`` runs the same two statements in the server:
one round trip. Its body is this release's statements (``rollups.rollup_function_body``);
``tests/test_store_rollups.py`` checks that the stored body is the code's. SQLite is
unchanged (no stored functions there).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

BODY = """

BEGIN
INSERT INTO usage_rollups (day, model, provider, owner, shared_workspace, status,
cached, results, tokens_spent, output_chars, latency_n, latency_sum, ttft_n,
ttft_sum, speed_n, speed_sum) SELECT one.day, one.model, one.provider, one.owner,
one.shared_workspace, one.status, one.cached, p_sign AS results, p_sign *
coalesce(one.tokens_used, 0) AS tokens_spent, p_sign * coalesce(one.chars, 0) AS
output_chars, CASE WHEN (one.latency_ms IS NULL) THEN 0 ELSE p_sign END AS
latency_n, p_sign * coalesce(one.latency_ms, 0) AS latency_sum, CASE WHEN
(one.ttft_ms IS NULL) THEN 0 ELSE p_sign END AS ttft_n, p_sign *
coalesce(one.ttft_ms, 0) AS ttft_sum, CASE WHEN (one.chars_per_s IS NULL) THEN 0
ELSE p_sign END AS speed_n, p_sign * coalesce(one.chars_per_s, 0) AS speed_sum
FROM (SELECT CAST((results.created_utc) AT TIME ZONE 'UTC' AS DATE) AS day,
results.model AS model, results.provider AS provider, coalesce(comparisons.owner,
'') AS owner, CASE WHEN (comparisons.visibility = 'workspace') THEN
coalesce(comparisons.workspace_id, 0) ELSE 0 END AS shared_workspace, results.status
AS status, results.cached AS cached, CAST(date_trunc('month', (results.created_utc)
AT TIME ZONE 'UTC') AS DATE) AS month, results.tokens_used AS tokens_used,
results.chars AS chars, results.latency_ms AS latency_ms, results.ttft_ms AS
ttft_ms, results.chars_per_s AS chars_per_s, CASE WHEN (results.status = 'completed'
AND results.cached IS false AND results.latency_ms IS NOT NULL) THEN
CAST(FLOOR(LN(GREATEST(CAST(results.latency_ms AS DOUBLE PRECISION), 1.0)) /
LN(1.02)) AS INTEGER) END AS latency_ms_bin, CASE WHEN (results.status = 'completed'
AND results.cached IS false AND results.ttft_ms IS NOT NULL) THEN
CAST(FLOOR(LN(GREATEST(CAST(results.ttft_ms AS DOUBLE PRECISION), 1.0)) / LN(1.02))
AS INTEGER) END AS ttft_ms_bin
FROM results JOIN comparisons ON comparisons.id = results.comparison_id
WHERE results.id = p_row AND (results.status = 'completed' OR results.status =
'partial' OR results.status = 'failed' OR results.status = 'cancelled' OR
results.status = 'interrupted')) AS one
WHERE true ON CONFLICT (day, model, provider, owner, shared_workspace, status,
cached) DO UPDATE SET results = (usage_rollups.results + excluded.results),
tokens_spent = (usage_rollups.tokens_spent + excluded.tokens_spent), output_chars =
(usage_rollups.output_chars + excluded.output_chars), latency_n =
(usage_rollups.latency_n + excluded.latency_n), latency_sum =
(usage_rollups.latency_sum + excluded.latency_sum), ttft_n = (usage_rollups.ttft_n +
excluded.ttft_n), ttft_sum = (usage_rollups.ttft_sum + excluded.ttft_sum), speed_n =
(usage_rollups.speed_n + excluded.speed_n), speed_sum = (usage_rollups.speed_sum +
excluded.speed_sum);
IF p_timed THEN
INSERT INTO usage_timings (day, model, provider, owner, shared_workspace, status,
cached, measure, period, low, counts) SELECT CASE WHEN (periods.period = 'day') THEN
one.day ELSE one.month END AS day, one.model, one.provider, one.owner,
one.shared_workspace, one.status, one.cached, periods.measure, periods.period, CASE
WHEN (periods.measure = 'latency_ms') THEN one.latency_ms_bin WHEN (periods.measure
= 'ttft_ms') THEN one.ttft_ms_bin END AS low, ARRAY[CAST(p_sign AS BIGINT)] AS
counts
FROM (SELECT CAST((results.created_utc) AT TIME ZONE 'UTC' AS DATE) AS day,
results.model AS model, results.provider AS provider, coalesce(comparisons.owner,
'') AS owner, CASE WHEN (comparisons.visibility = 'workspace') THEN
coalesce(comparisons.workspace_id, 0) ELSE 0 END AS shared_workspace, results.status
AS status, results.cached AS cached, CAST(date_trunc('month', (results.created_utc)
AT TIME ZONE 'UTC') AS DATE) AS month, results.tokens_used AS tokens_used,
results.chars AS chars, results.latency_ms AS latency_ms, results.ttft_ms AS
ttft_ms, results.chars_per_s AS chars_per_s, CASE WHEN (results.status = 'completed'
AND results.cached IS false AND results.latency_ms IS NOT NULL) THEN
CAST(FLOOR(LN(GREATEST(CAST(results.latency_ms AS DOUBLE PRECISION), 1.0)) /
LN(1.02)) AS INTEGER) END AS latency_ms_bin, CASE WHEN (results.status = 'completed'
AND results.cached IS false AND results.ttft_ms IS NOT NULL) THEN
CAST(FLOOR(LN(GREATEST(CAST(results.ttft_ms AS DOUBLE PRECISION), 1.0)) / LN(1.02))
AS INTEGER) END AS ttft_ms_bin
FROM results JOIN comparisons ON comparisons.id = results.comparison_id
WHERE results.id = p_row AND (results.status = 'completed' OR results.status =
'partial' OR results.status = 'failed' OR results.status = 'cancelled' OR
results.status = 'interrupted')
 LIMIT 1) AS one JOIN (SELECT 'latency_ms' AS measure, 'day' AS period UNION ALL
SELECT 'latency_ms' AS measure, 'month' AS period UNION ALL SELECT 'ttft_ms' AS
measure, 'day' AS period UNION ALL SELECT 'ttft_ms' AS measure, 'month' AS period)
AS periods ON true
WHERE CASE WHEN (periods.measure = 'latency_ms') THEN one.latency_ms_bin WHEN
(periods.measure = 'ttft_ms') THEN one.ttft_ms_bin END IS NOT NULL ON CONFLICT (day,
model, provider, owner, shared_workspace, status, cached, measure, period) DO UPDATE
SET low = LEAST(usage_timings.low, excluded.low), counts = CASE WHEN
cardinality(excluded.counts) = 1 AND ((excluded.low) - (usage_timings.low)) >= 0 AND
((excluded.low) - (usage_timings.low)) < cardinality(usage_timings.counts) THEN
(usage_timings.counts)[1:((excluded.low) - (usage_timings.low))] ||
((usage_timings.counts)[((excluded.low) - (usage_timings.low)) + 1] +
(excluded.counts)[1]) || (usage_timings.counts)[((excluded.low) -
(usage_timings.low)) + 2:] ELSE ARRAY(SELECT COALESCE((usage_timings.counts)[i -
(usage_timings.low) + 1], 0) + COALESCE((excluded.counts)[i - (excluded.low) + 1],
0) FROM generate_series(LEAST(usage_timings.low, excluded.low),
GREATEST((usage_timings.low) + cardinality(usage_timings.counts), (excluded.low) +
cardinality(excluded.counts)) - 1) AS bins(i) ORDER BY i) END;
END IF;
END

"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The driver's own execute: the body's array slices (``[1:n]``) are not bind markers.
    op.get_bind().exec_driver_sql(
        "CREATE OR REPLACE FUNCTION playground_rollup_add("
        "p_row bigint, p_sign integer, p_timed boolean) RETURNS void "
        f"LANGUAGE plpgsql AS $playground${BODY}$playground$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS playground_rollup_add(bigint, integer, boolean)")
