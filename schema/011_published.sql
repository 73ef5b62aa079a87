-- runstore schema, version 11: a hub's record of what nodes published (docs/SCALE-OUT.md).
--
-- Nodes of a cluster write their runs to stores on local disk and publish them into an
-- inbox as files: a delta of one run (its run row as it stands, and what it logged since
-- the previous file). `runstore sync --watch INBOX` merges them into this store, the only
-- writer of it. A file is merged once (`published_files`); merging one again, or out of
-- order, changes nothing wrong: points are keyed by (run, metric, step), and a run's
-- columns are taken only from a file later in its session (`seq`) than the one they came
-- from. A run is published by one session (one process); another session publishing the
-- same run id (a second run given the same id) is refused.

CREATE TABLE published_files (
    name         TEXT PRIMARY KEY,           -- the file's name in the archive
    run_key      INTEGER NOT NULL REFERENCES run_records (run_key) ON DELETE CASCADE,
    session      INTEGER NOT NULL,           -- the publishing process's token
    seq          INTEGER NOT NULL,           -- the file's number in that session
    published_ns INTEGER NOT NULL,           -- when the node wrote it (its clock)
    points       INTEGER NOT NULL,           -- points it held
    final        INTEGER NOT NULL,           -- 1 for the file a finished run published last
    merged_at    TEXT NOT NULL
);
CREATE INDEX published_files_run ON published_files (run_key, seq);

-- The newest file merged for each published run: its columns came from that file, and
-- the hub keeps the run's heartbeat while files keep coming.
CREATE TABLE published_runs (
    run_key      INTEGER PRIMARY KEY REFERENCES run_records (run_key) ON DELETE CASCADE,
    session      INTEGER NOT NULL,           -- the one session that publishes this run
    seq          INTEGER NOT NULL,           -- of the newest file merged
    seen_at      REAL NOT NULL               -- hub's unix time when a file last arrived
);
