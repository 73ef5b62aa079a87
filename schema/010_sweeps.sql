-- runstore schema, version 10: sweeps, coordinated in the store (runstore.sweep / agent).
--
-- A sweep is a search over configurations (wandb's sweep YAML: method grid, random or
-- bayes, a metric, parameters). Agents, in any number of processes, claim the next
-- configuration in one BEGIN IMMEDIATE transaction: a `sweep_trials` row. A trial is one
-- configuration (`seq`, its number in the sweep; for grid, its place in the grid) and one
-- attempt at it (a crashed attempt may be offered again, as attempt 1, 2, ...). Its run
-- has the id `run_id`, fixed when it is claimed, in the sweep's project.

CREATE TABLE sweeps (
    sweep_key   INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    entity      TEXT NOT NULL,
    project     TEXT NOT NULL,
    name        TEXT,
    method      TEXT NOT NULL CHECK (method IN ('grid', 'random', 'bayes')),
    config      TEXT NOT NULL,                      -- JSON: the sweep config as given
    state       TEXT NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'paused', 'cancelled', 'finished')),
    seed        INTEGER NOT NULL,                   -- random and bayes draw from it
    retries     INTEGER NOT NULL DEFAULT 1,         -- offers of a crashed configuration
    created_at  TEXT NOT NULL,
    finished_at TEXT
);

CREATE TABLE sweep_trials (
    sweep_key  INTEGER NOT NULL REFERENCES sweeps (sweep_key) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,                    -- the configuration's number
    attempt    INTEGER NOT NULL DEFAULT 0,
    params     TEXT NOT NULL,                       -- JSON: the swept values, nested as
                                                    -- the run's config holds them
    coords     TEXT NOT NULL DEFAULT '{}',          -- JSON: where the sampler drew them
                                                    -- (grid index, quantiles, Optuna's)
    run_id     TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    worker_pid INTEGER,                             -- the process running it (the agent's
    worker_started TEXT,                            -- own, or its program's) and its start
    claimed_at TEXT NOT NULL,
    ended_at   TEXT,
    outcome    TEXT CHECK (outcome IN ('finished', 'failed', 'crashed', 'stopped')),
    metric     REAL,                                -- the sweep metric at the end
    PRIMARY KEY (sweep_key, seq, attempt)
) WITHOUT ROWID;

CREATE TABLE sweep_agents (
    agent_id    TEXT PRIMARY KEY,
    sweep_key   INTEGER NOT NULL REFERENCES sweeps (sweep_key) ON DELETE CASCADE,
    host        TEXT,
    pid         INTEGER,
    pid_started TEXT,
    started_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    stopped_at  TEXT
);

-- One row per trial with its run, for SQL and Datasette users.
CREATE INDEX sweep_trials_open ON sweep_trials (sweep_key, outcome);

CREATE VIEW sweep_runs AS
SELECT
    s.id AS sweep_id, s.project, t.seq, t.attempt, t.params, t.run_id,
    r.run_key, r.name AS run_name, coalesce(r.state, 'pending') AS run_state,
    t.outcome, t.metric, t.agent_id, t.claimed_at, t.ended_at
FROM sweep_trials t
JOIN sweeps s ON s.sweep_key = t.sweep_key
LEFT JOIN runs r ON r.entity = s.entity AND r.project = s.project AND r.id = t.run_id;
