-- runstore schema, version 2: resume, rewind and fork, with lineage and an archive.

ALTER TABLE runs ADD COLUMN parent_run_key INTEGER REFERENCES runs (run_key);
ALTER TABLE runs ADD COLUMN fork_step INTEGER;
ALTER TABLE runs ADD COLUMN resume_count INTEGER NOT NULL DEFAULT 0;

-- Every resume, rewind and fork: what happened to which run, from where, when.
CREATE TABLE run_events (
    event_id       INTEGER PRIMARY KEY,
    run_key        INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    relation       TEXT NOT NULL CHECK (relation IN ('resume', 'rewind', 'fork')),
    parent_run_key INTEGER REFERENCES runs (run_key),
    step           INTEGER,
    at             TEXT NOT NULL,
    rows_moved     INTEGER NOT NULL DEFAULT 0,  -- rewind: points archived; fork: copied
    undone_at      TEXT                          -- rewind: when unrewind restored it
);
CREATE INDEX run_events_run ON run_events (run_key, event_id);
CREATE INDEX run_events_parent ON run_events (parent_run_key);

-- The tail a rewind took out of the live history, kept so it can be inspected and undone.
CREATE TABLE history_archive (
    event_id   INTEGER NOT NULL REFERENCES run_events (event_id) ON DELETE CASCADE,
    run_key    INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    value      REAL,
    value_json TEXT,
    PRIMARY KEY (event_id, key_id, step)
) WITHOUT ROWID;

CREATE TABLE steps_archive (
    event_id  INTEGER NOT NULL REFERENCES run_events (event_id) ON DELETE CASCADE,
    run_key   INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    runtime   REAL NOT NULL,
    PRIMARY KEY (event_id, step)
) WITHOUT ROWID;

CREATE VIEW run_lineage AS
SELECT e.event_id, e.run_key, r.project, r.id AS run_id, e.relation,
       e.parent_run_key, p.id AS parent_id, e.step, e.at, e.rows_moved, e.undone_at
FROM run_events e
JOIN runs r ON r.run_key = e.run_key
LEFT JOIN runs p ON p.run_key = e.parent_run_key;
