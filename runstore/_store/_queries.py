"""Canned queries for the Datasette UI: the common questions about a store.

Every input is a `:name` parameter bound by SQLite; no SQL is built from user text.
An empty `project` means every project. They read the `runs` view (never the
`run_records` table), so a run's state is the one every reader shows.
"""

from __future__ import annotations

import copy
from typing import Any

# Which end is best, per project: :goal (min/max) if given, else 'min' when the
# runs' hints all say min, else 'max'. A run's hint is its define_metric goal for
# :metric, else 'min' when its summary is an aggregate holding a min but no max.
# The value of an aggregate ({"max": .., "last": ..}) is the op that end picks,
# else last, mean, first; plain numbers are used as they are.
_BEST_RUN = """
WITH hinted AS (
  SELECT r.run_key, r.entity, r.project, r.name, r.id AS run_id, r.state, r.created_at,
         s.value AS raw, s.type,
         CASE (SELECT json_extract(d.value, '$.goal') FROM json_each(r.metric_definitions) d
               WHERE json_extract(d.value, '$.name') = :metric LIMIT 1)
           WHEN 'minimize' THEN 'min'
           WHEN 'maximize' THEN 'max'
           ELSE CASE WHEN s.type = 'object' AND json_type(s.value, '$.min') IS NOT NULL
                          AND json_type(s.value, '$.max') IS NULL THEN 'min' END
         END AS hint
  FROM runs r JOIN json_each(r.summary) s ON s.key = :metric
  WHERE trim(:project) = '' OR r.project = trim(:project)
), directed AS (
  SELECT *,
         CASE
           WHEN lower(trim(:goal)) IN ('min', 'minimize', 'minimise') THEN 'min'
           WHEN lower(trim(:goal)) IN ('max', 'maximize', 'maximise') THEN 'max'
           WHEN sum(hint = 'min') OVER p > 0 AND coalesce(sum(hint = 'max') OVER p, 0) = 0
             THEN 'min'
           ELSE 'max'
         END AS dir
  FROM hinted WINDOW p AS (PARTITION BY entity, project)
), valued AS (
  SELECT *,
         CASE WHEN type = 'object' THEN coalesce(
                json_extract(raw, '$.' || dir), json_extract(raw, '$.last'),
                json_extract(raw, '$.mean'), json_extract(raw, '$.first'))
              ELSE raw END AS value
  FROM directed
), ranked AS (
  SELECT *, row_number() OVER (
           PARTITION BY entity, project
           ORDER BY CASE WHEN dir = 'min' THEN value ELSE -value END, created_at, run_key
         ) AS pos,
         count(*) OVER (PARTITION BY entity, project) AS runs_with_metric
  FROM valued WHERE typeof(value) IN ('integer', 'real')
)
SELECT entity, project, run_key, name, run_id, state, :metric AS metric, value,
       dir AS best_is, runs_with_metric, created_at
FROM ranked WHERE pos = 1
ORDER BY entity, project
"""

# A number typed in the form matches a stored number (lr = 1e-3 finds 0.001);
# true/false/null match JSON booleans and null.
_CONFIG_VALUE = """
SELECT c.run_key, r.name, c.project, c.run_id, r.state, r.created_at, c.key, c.value
FROM config_values c JOIN runs r ON r.run_key = c.run_key
WHERE c.key = trim(:key) AND (
  (c.type NOT IN ('true', 'false', 'null') AND CAST(c.value AS TEXT) = :value)
  OR (c.type IN ('true', 'false', 'null') AND c.type = lower(trim(:value)))
  OR (c.type IN ('integer', 'real') AND trim(:value) <> ''
      AND trim(:value) NOT GLOB '*[^0-9eE.+-]*' AND CAST(trim(:value) AS REAL) = c.value)
)
ORDER BY r.created_at DESC, c.run_key DESC
"""

# run_list's state: a running run whose heartbeat stopped counts as crashed.
_FAILED = """
SELECT l.run_key, l.name, l.state, l.entity, l.project, l.id AS run_id, l.created_at,
       r.finished_at, r.exit_code, l.runtime, l.host, r.program
FROM run_list l JOIN runs r ON r.run_key = l.run_key
WHERE l.state IN ('failed', 'crashed')
ORDER BY l.created_at DESC, l.run_key DESC
"""

# Every resume, rewind and fork of the run, its fork ancestors and its fork descendants.
_LINEAGE = """
WITH RECURSIVE
  target(run_key) AS (SELECT run_key FROM runs WHERE id = trim(:run_id)),
  ancestors(run_key) AS (
    SELECT run_key FROM target
    UNION
    SELECT r.parent_run_key FROM runs r JOIN ancestors a ON r.run_key = a.run_key
    WHERE r.parent_run_key IS NOT NULL
  ),
  descendants(run_key) AS (
    SELECT run_key FROM target
    UNION
    SELECT r.run_key FROM runs r JOIN descendants d ON r.parent_run_key = d.run_key
  )
SELECT l.event_id, l.run_key, l.project, l.run_id, l.relation, l.parent_run_key,
       l.parent_id, l.step, l.at, l.rows_moved, l.undone_at
FROM run_lineage l
WHERE l.run_key IN (SELECT run_key FROM ancestors UNION SELECT run_key FROM descendants)
ORDER BY l.at, l.event_id
"""

CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "best_run_per_project": {
        "title": "Best run per project by a summary metric",
        "description": (
            "The best run of each project (or of one project) by a summary metric such as "
            "val/acc. Metrics with a define_metric summary ({\"max\": ...}) use the op "
            "the best end picks. goal: min or max; blank uses the runs' define_metric "
            "goal (or a min-only aggregate), else max. Blank project: every project."
        ),
        "sql": _BEST_RUN.strip(),
        "params": ["metric", "project", "goal"],
    },
    "runs_with_config_value": {
        "title": "Runs with a given config value",
        "description": (
            "Runs whose config has key = value; nested keys are dotted (optimizer.name). "
            "Numbers match numerically (1e-3 finds 0.001)."
        ),
        "sql": _CONFIG_VALUE.strip(),
        "params": ["key", "value"],
    },
    "failed_and_crashed_runs": {
        "title": "Failed and crashed runs",
        "description": "Runs that ended with an error or stopped without finishing, newest first.",
        "sql": _FAILED.strip(),
    },
    "run_lineage_of": {
        "title": "Lineage of a run",
        "description": (
            "Every resume, rewind and fork of a run (by its id), of the runs it was "
            "forked from and of the runs forked from it."
        ),
        "sql": _LINEAGE.strip(),
        "params": ["run_id"],
    },
}


def canned_queries() -> dict[str, dict[str, Any]]:
    """Datasette canned-query definitions for a store (fresh copies)."""
    return copy.deepcopy(CANNED_QUERIES)
