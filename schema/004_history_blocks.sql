-- runstore schema, version 4: per-block summaries of numeric history, so a chart of a
-- 1M-point metric is drawn from ~1,000 rows (M4: first, last, min and max per block).
-- Blocks are 1024 steps wide; only finite values count. The store keeps this table
-- current on every write, rewind, fork and sync.

CREATE TABLE history_blocks (
    run_key     INTEGER NOT NULL,
    key_id      INTEGER NOT NULL,
    block       INTEGER NOT NULL,   -- step / 1024
    n           INTEGER NOT NULL,   -- finite points in the block
    first_step  INTEGER NOT NULL,
    first_value REAL NOT NULL,
    last_step   INTEGER,
    last_value  REAL,
    min_step    INTEGER,
    min_value   REAL,
    max_step    INTEGER,
    max_value   REAL,
    PRIMARY KEY (run_key, key_id, block)
) WITHOUT ROWID;

-- Summaries of the history already in the store.
INSERT INTO history_blocks (run_key, key_id, block, n, first_step, first_value)
SELECT run_key, key_id, step / 1024, count(*), min(step), value
FROM history
WHERE value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308
GROUP BY run_key, key_id, step / 1024;

UPDATE history_blocks SET (last_step, last_value) = (
    SELECT max(step), value FROM history h
    WHERE h.run_key = history_blocks.run_key AND h.key_id = history_blocks.key_id
      AND h.step BETWEEN block * 1024 AND block * 1024 + 1023
      AND h.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308);

UPDATE history_blocks SET (min_value, min_step) = (
    SELECT min(value), step FROM history h
    WHERE h.run_key = history_blocks.run_key AND h.key_id = history_blocks.key_id
      AND h.step BETWEEN block * 1024 AND block * 1024 + 1023
      AND h.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308);

UPDATE history_blocks SET (max_value, max_step) = (
    SELECT max(value), step FROM history h
    WHERE h.run_key = history_blocks.run_key AND h.key_id = history_blocks.key_id
      AND h.step BETWEEN block * 1024 AND block * 1024 + 1023
      AND h.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308);
