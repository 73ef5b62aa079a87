-- runstore schema, version 1: runs, interned metric keys, narrow history.

CREATE TABLE runs (
    run_key            INTEGER PRIMARY KEY,
    entity             TEXT NOT NULL,
    project            TEXT NOT NULL,
    id                 TEXT NOT NULL,
    name               TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'running'
                       CHECK (state IN ('running', 'finished', 'failed', 'crashed')),
    notes              TEXT,
    tags               TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    run_group          TEXT,
    job_type           TEXT,
    config             TEXT NOT NULL DEFAULT '{}',   -- JSON object
    summary            TEXT NOT NULL DEFAULT '{}',   -- JSON object
    metric_definitions TEXT NOT NULL DEFAULT '{}',   -- JSON: define_metric() calls
    created_at         TEXT NOT NULL,                -- ISO-8601, UTC
    heartbeat_at       TEXT,                         -- ISO-8601, UTC; refreshed by the writer
    finished_at        TEXT,
    runtime            REAL,                         -- seconds
    exit_code          INTEGER,
    host               TEXT,
    pid                INTEGER,
    os_user            TEXT,
    program            TEXT,
    args               TEXT,                         -- JSON array (sys.argv[1:])
    python_version     TEXT,
    git_commit         TEXT,
    git_remote         TEXT,
    git_branch         TEXT,
    git_dirty          INTEGER,
    UNIQUE (entity, project, id)
);
CREATE INDEX runs_project_created ON runs (project, created_at);
CREATE INDEX runs_created ON runs (created_at);

-- Metric names are interned: history rows carry a small integer.
CREATE TABLE metric_keys (
    key_id INTEGER PRIMARY KEY,
    key    TEXT NOT NULL UNIQUE
);

-- One row per committed step: wall-clock time and runtime stored once, not per key.
CREATE TABLE steps (
    run_key   INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    step      INTEGER NOT NULL,
    timestamp REAL NOT NULL,   -- unix seconds (wandb's _timestamp)
    runtime   REAL NOT NULL,   -- seconds since the run started (wandb's _runtime)
    PRIMARY KEY (run_key, step)
) WITHOUT ROWID;

-- Narrow history: one row per (run, key, step), clustered so one metric of one
-- run is one range scan. Numbers go to `value` (REAL, so aggregates just work);
-- everything else (strings, lists, NaN) goes to `value_json`.
CREATE TABLE history (
    run_key    INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    value      REAL,
    value_json TEXT,
    PRIMARY KEY (run_key, key_id, step)
) WITHOUT ROWID;

-- Friendly views for SQL and Datasette users.

CREATE VIEW run_list AS
SELECT
    r.run_key, r.name, r.state, r.project, r.entity, r.id, r.run_group, r.job_type,
    r.tags, r.created_at,
    CASE WHEN r.state = 'running'
         THEN round((julianday('now') - julianday(r.created_at)) * 86400.0, 1)
         ELSE round(r.runtime, 1) END AS runtime,
    r.summary, r.config, r.notes, r.git_commit, r.host
FROM runs r;

CREATE VIEW run_tags AS
SELECT r.run_key, r.project, r.id AS run_id, t.value AS tag
FROM runs r, json_each(r.tags) t;

-- Nested config keys are shown dotted (optimizer.lr), as wandb's UI does.
CREATE VIEW config_values AS
SELECT r.run_key, r.project, r.id AS run_id,
       CASE WHEN c.path = '$' THEN c.key ELSE substr(c.path, 3) || '.' || c.key END AS key,
       c.value, c.type
FROM runs r, json_tree(r.config) c
WHERE c.type NOT IN ('object', 'array');

-- Summary keys are flat; an aggregated key (define_metric) holds a JSON object.
CREATE VIEW summary_values AS
SELECT r.run_key, r.project, r.id AS run_id, s.key, s.value, s.type
FROM runs r, json_each(r.summary) s;

CREATE VIEW metrics AS
SELECT r.project, r.id AS run_id, h.run_key, k.key, h.step, h.value, h.value_json,
       s.timestamp, s.runtime
FROM history h
JOIN runs r ON r.run_key = h.run_key
JOIN metric_keys k ON k.key_id = h.key_id
LEFT JOIN steps s ON s.run_key = h.run_key AND s.step = h.step;
