-- runstore schema, version 3: files stored with runs (saved code, git diffs), and
-- where a synced offline run came from.

-- File contents, deduplicated by their SHA-256.
CREATE TABLE blobs (
    sha256  TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    content BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE run_files (
    run_key    INTEGER NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    path       TEXT NOT NULL,          -- e.g. code/train.py, diff.patch
    kind       TEXT NOT NULL,          -- code, diff, notebook
    sha256     TEXT NOT NULL REFERENCES blobs (sha256),
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_key, path)
) WITHOUT ROWID;

-- The offline run directory a synced run came from (re-syncing it replaces the run).
ALTER TABLE runs ADD COLUMN synced_from TEXT;
