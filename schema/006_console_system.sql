-- runstore schema, version 6: what a run printed, and system metrics sampled beside it.

-- stdout/stderr of the run's process, line by line, with the time each was printed.
CREATE TABLE console_lines (
    run_key INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,      -- order within the run
    stream  TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    at      REAL NOT NULL,         -- unix seconds
    line    TEXT NOT NULL,
    PRIMARY KEY (run_key, seq)
) WITHOUT ROWID;

-- CPU, memory, disk and GPU utilisation sampled in the background, on a time axis of
-- their own (training steps are not touched). Keys are interned like metric keys
-- (system/cpu, system/memory_percent, system/gpu.0.util, ...).
CREATE TABLE system_metrics (
    run_key INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    key_id  INTEGER NOT NULL,
    at      REAL NOT NULL,         -- unix seconds
    value   REAL,
    PRIMARY KEY (run_key, key_id, at)
) WITHOUT ROWID;

CREATE VIEW console AS
SELECT r.project, r.id AS run_id, c.run_key, c.seq, c.stream, c.at, c.line
FROM console_lines c JOIN runs r ON r.run_key = c.run_key;

CREATE VIEW system AS
SELECT r.project, r.id AS run_id, s.run_key, k.key, s.at, s.value
FROM system_metrics s
JOIN runs r ON r.run_key = s.run_key
JOIN metric_keys k ON k.key_id = s.key_id;
