-- runstore schema, version 7: a value reads back as it was logged. `history.value` (and
-- the archive's) had REAL affinity, so the int 3 read back as 3.0 and 2**53 + 1 lost its
-- last digit. The column now has no declared type (no affinity: SQLite keeps each
-- value's own storage class), so ints stay INTEGER (full int64), floats stay REAL, and
-- min/max/avg still work over a metric that mixes them. Values stored before this
-- version stay REAL: whether they were logged as ints cannot be known.
-- (A column declared `ANY` in an ordinary table would get NUMERIC affinity, which
-- turns 2.0 into 2; hence no type at all.)

DROP VIEW metrics;

CREATE TABLE history_v7 (
    run_key    INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    value,                -- int, float or NULL; bools are 0/1 with value_json 'true'/'false'
    value_json TEXT,      -- JSON of what is not a plain number (strings, lists, None, NaN, bools)
    PRIMARY KEY (run_key, key_id, step)
) WITHOUT ROWID;
INSERT INTO history_v7 (run_key, key_id, step, value, value_json)
SELECT run_key, key_id, step, value, value_json FROM history ORDER BY run_key, key_id, step;
DROP TABLE history;
ALTER TABLE history_v7 RENAME TO history;

CREATE TABLE history_archive_v7 (
    event_id   INTEGER NOT NULL REFERENCES run_events (event_id) ON DELETE CASCADE,
    run_key    INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    value,
    value_json TEXT,
    PRIMARY KEY (event_id, key_id, step)
) WITHOUT ROWID;
INSERT INTO history_archive_v7 (event_id, run_key, key_id, step, value, value_json)
SELECT event_id, run_key, key_id, step, value, value_json FROM history_archive
ORDER BY event_id, key_id, step;
DROP TABLE history_archive;
ALTER TABLE history_archive_v7 RENAME TO history_archive;

CREATE VIEW metrics AS
SELECT r.project, r.id AS run_id, h.run_key, k.key, h.step, h.value, h.value_json,
       s.timestamp, s.runtime
FROM history h
JOIN runs r ON r.run_key = h.run_key
JOIN metric_keys k ON k.key_id = h.key_id
LEFT JOIN steps s ON s.run_key = h.run_key AND s.step = h.step;
