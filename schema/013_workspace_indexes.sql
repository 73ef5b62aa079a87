-- runstore schema, version 13: the workspace's runs table, sorted and searched fast.
--
-- Sorting a project view (`runs/<project>`, version 12) by a config or summary key made
-- SQLite parse every run's JSON and sort all of them (~90 ms at 10,000 runs, before a
-- page of 50 rows is read). A key that is sorted on gets an expression index on
-- `run_records`, partial to its project, whose expression is the view column's own (so
-- SQLite walks the index and reads the 50 rows). The indexes are made by whoever sorts
-- (the UI, `runstore._store.ensure_key_index`), never by a training process, and only
-- for the keys sorted on: every index costs each summary rewrite a little. This table
-- names them (index `runs_key_index_<index_id>`); a view rebuilt with another expression
-- for the column drops its index, and at most a few are kept per project.

CREATE TABLE project_key_indexes (
    index_id    INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    column_name TEXT NOT NULL,   -- the column of runs/<project>
    expr        TEXT NOT NULL,   -- its SQL expression over run_records, as indexed
    UNIQUE (project, column_name)
);

-- run_list: `?_search=` asks for `run_key IN (<FTS matches>)`, which SQLite answered by
-- looking each match up and sorting them all by created_at (thousands of matches of a
-- common word, JSON columns included). With run_key an expression (a CAST to INTEGER: the
-- same value, and the same affinity for `?run_key=5`), it walks the created_at index
-- instead and stops after a page. The project views get the same column when rebuilt:
-- all of them are marked stale below.
DROP VIEW run_list;

CREATE VIEW run_list AS
SELECT
    CAST(r.run_key AS INTEGER) AS run_key, r.name, r.state, r.project, r.entity, r.id, r.run_group,
    r.job_type, r.tags, r.created_at, round(r.runtime, 1) AS runtime,
    r.summary, r.config, r.notes, r.git_commit, r.host
FROM runs r;

UPDATE project_views SET keys_version = keys_version + 1;
