-- runstore schema, version 12: the workspace's runs table and search.
--
-- Each project gets a view, "runs/<project>", whose columns are the run's own fields and
-- every config and summary key of the project as a column of its own ("config.optimizer.lr",
-- "summary.val/acc.max"), so Datasette sorts, filters, facets and exports them. Views are
-- DDL, which triggers cannot run: the triggers below only record, in the same transaction
-- as the write, which keys each project has (`project_keys`) and bump the project's
-- `keys_version` when one appears or stops being numeric. Whoever reads the views (the UI,
-- `runstore._store.refresh_workspace_views`) recreates a project's view when its
-- `built_version` is behind, so no training process ever waits on a schema change.
--
-- A config or summary that is not a JSON object (written by hand in SQL) has no keys:
-- the triggers never make a write fail.
-- A key is a path of object keys, kept as a JSON array (`parts`), never as a JSON path
-- string: a key may hold any character. Objects are descended into except a tagged
-- non-finite float ({"__float__": "NaN"}: a numeric leaf) and a media description
-- (an object with "_type": a leaf, as the UI shows it); arrays are leaves.
-- `numeric` is 1 while every value seen is a number or a bool: the view then casts the
-- column to NUMERIC, so Datasette's filters (`?config.lr__lt=0.001`, whose value arrives
-- as text) compare numbers with numbers.

CREATE TABLE project_keys (
    project TEXT NOT NULL,
    source  TEXT NOT NULL CHECK (source IN ('config', 'summary')),
    parts   TEXT NOT NULL,            -- JSON array of the object keys on the way to the value
    numeric INTEGER NOT NULL,         -- every value seen is a number or bool
    tagged  INTEGER NOT NULL,         -- some value is a tagged non-finite float
    PRIMARY KEY (project, source, parts)
);

CREATE TABLE project_views (
    project       TEXT PRIMARY KEY,
    keys_version  INTEGER NOT NULL DEFAULT 0,  -- bumped when project_keys changes
    built_version INTEGER                      -- keys_version the view was built from
);

CREATE TRIGGER project_keys_added AFTER INSERT ON project_keys
BEGIN
    INSERT INTO project_views (project, keys_version) VALUES (NEW.project, 1)
    ON CONFLICT (project) DO UPDATE SET keys_version = keys_version + 1;
END;

CREATE TRIGGER project_keys_changed AFTER UPDATE ON project_keys
BEGIN
    UPDATE project_views SET keys_version = keys_version + 1 WHERE project = NEW.project;
END;

-- A run's config and summary leaves: `kind` is the JSON type, 'tagged' (a non-finite
-- float), 'media' or 'object' (descended into). The triggers share this body; an update
-- walks only the column that changed (the writer rewrites the summary with each commit).
CREATE TRIGGER run_records_keys_insert AFTER INSERT ON run_records
BEGIN
    INSERT INTO project_keys (project, source, parts, numeric, tagged)
    SELECT NEW.project, source, parts,
           kind IN ('integer', 'real', 'true', 'false', 'tagged'), kind = 'tagged'
    FROM (
        WITH RECURSIVE node (source, parts, value, kind) AS (
            SELECT 'config', json_array(j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM json_each(CASE WHEN NOT json_valid(NEW.config) THEN '{}'
                                WHEN json_type(NEW.config) = 'object' THEN NEW.config
                                ELSE '{}' END) j
            UNION ALL
            SELECT 'summary', json_array(j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM json_each(CASE WHEN NOT json_valid(NEW.summary) THEN '{}'
                                WHEN json_type(NEW.summary) = 'object' THEN NEW.summary
                                ELSE '{}' END) j
            UNION ALL
            SELECT n.source, json_insert(n.parts, '$[#]', j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM node n, json_each(CASE WHEN n.kind = 'object' THEN n.value ELSE '{}' END) j
        )
        SELECT source, parts, kind FROM node WHERE kind <> 'object'
    ) WHERE true
    ON CONFLICT (project, source, parts) DO UPDATE
        SET numeric = numeric AND excluded.numeric, tagged = tagged OR excluded.tagged
        WHERE (numeric AND NOT excluded.numeric) OR (excluded.tagged AND NOT tagged);
END;

CREATE TRIGGER run_records_keys_project AFTER UPDATE OF project ON run_records
WHEN NEW.project IS NOT OLD.project
BEGIN
    INSERT INTO project_keys (project, source, parts, numeric, tagged)
    SELECT NEW.project, source, parts,
           kind IN ('integer', 'real', 'true', 'false', 'tagged'), kind = 'tagged'
    FROM (
        WITH RECURSIVE node (source, parts, value, kind) AS (
            SELECT 'config', json_array(j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM json_each(CASE WHEN NOT json_valid(NEW.config) THEN '{}'
                                WHEN json_type(NEW.config) = 'object' THEN NEW.config
                                ELSE '{}' END) j
            UNION ALL
            SELECT 'summary', json_array(j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM json_each(CASE WHEN NOT json_valid(NEW.summary) THEN '{}'
                                WHEN json_type(NEW.summary) = 'object' THEN NEW.summary
                                ELSE '{}' END) j
            UNION ALL
            SELECT n.source, json_insert(n.parts, '$[#]', j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM node n, json_each(CASE WHEN n.kind = 'object' THEN n.value ELSE '{}' END) j
        )
        SELECT source, parts, kind FROM node WHERE kind <> 'object'
    ) WHERE true
    ON CONFLICT (project, source, parts) DO UPDATE
        SET numeric = numeric AND excluded.numeric, tagged = tagged OR excluded.tagged
        WHERE (numeric AND NOT excluded.numeric) OR (excluded.tagged AND NOT tagged);
END;

CREATE TRIGGER run_records_keys_config AFTER UPDATE OF config ON run_records
WHEN NEW.config IS NOT OLD.config
BEGIN
    INSERT INTO project_keys (project, source, parts, numeric, tagged)
    SELECT NEW.project, source, parts,
           kind IN ('integer', 'real', 'true', 'false', 'tagged'), kind = 'tagged'
    FROM (
        WITH RECURSIVE node (source, parts, value, kind) AS (
            SELECT 'config', json_array(j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM json_each(CASE WHEN NOT json_valid(NEW.config) THEN '{}'
                                WHEN json_type(NEW.config) = 'object' THEN NEW.config
                                ELSE '{}' END) j
            UNION ALL
            SELECT n.source, json_insert(n.parts, '$[#]', j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM node n, json_each(CASE WHEN n.kind = 'object' THEN n.value ELSE '{}' END) j
        )
        SELECT source, parts, kind FROM node WHERE kind <> 'object'
    ) WHERE true
    ON CONFLICT (project, source, parts) DO UPDATE
        SET numeric = numeric AND excluded.numeric, tagged = tagged OR excluded.tagged
        WHERE (numeric AND NOT excluded.numeric) OR (excluded.tagged AND NOT tagged);
END;

CREATE TRIGGER run_records_keys_summary AFTER UPDATE OF summary ON run_records
WHEN NEW.summary IS NOT OLD.summary
BEGIN
    INSERT INTO project_keys (project, source, parts, numeric, tagged)
    SELECT NEW.project, source, parts,
           kind IN ('integer', 'real', 'true', 'false', 'tagged'), kind = 'tagged'
    FROM (
        WITH RECURSIVE node (source, parts, value, kind) AS (
            SELECT 'summary', json_array(j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM json_each(CASE WHEN NOT json_valid(NEW.summary) THEN '{}'
                                WHEN json_type(NEW.summary) = 'object' THEN NEW.summary
                                ELSE '{}' END) j
            UNION ALL
            SELECT n.source, json_insert(n.parts, '$[#]', j.key), j.value,
                   CASE WHEN j.type <> 'object' THEN j.type
                       WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                       WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                       ELSE 'object' END
            FROM node n, json_each(CASE WHEN n.kind = 'object' THEN n.value ELSE '{}' END) j
        )
        SELECT source, parts, kind FROM node WHERE kind <> 'object'
    ) WHERE true
    ON CONFLICT (project, source, parts) DO UPDATE
        SET numeric = numeric AND excluded.numeric, tagged = tagged OR excluded.tagged
        WHERE (numeric AND NOT excluded.numeric) OR (excluded.tagged AND NOT tagged);
END;

-- The keys of the runs already in the store, as the triggers above record them.
INSERT INTO project_keys (project, source, parts, numeric, tagged)
SELECT project, source, parts, min(numeric), max(tagged) FROM (
    WITH RECURSIVE node (project, source, parts, value, kind) AS (
        SELECT r.project, 'config', json_array(j.key), j.value,
               CASE WHEN j.type <> 'object' THEN j.type
                   WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                   WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                   ELSE 'object' END
        FROM run_records r, json_each(CASE WHEN NOT json_valid(r.config) THEN '{}'
                                          WHEN json_type(r.config) = 'object' THEN r.config
                                          ELSE '{}' END) j
        UNION ALL
        SELECT r.project, 'summary', json_array(j.key), j.value,
               CASE WHEN j.type <> 'object' THEN j.type
                   WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                   WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                   ELSE 'object' END
        FROM run_records r, json_each(CASE WHEN NOT json_valid(r.summary) THEN '{}'
                                          WHEN json_type(r.summary) = 'object' THEN r.summary
                                          ELSE '{}' END) j
        UNION ALL
        SELECT n.project, n.source, json_insert(n.parts, '$[#]', j.key), j.value,
               CASE WHEN j.type <> 'object' THEN j.type
                   WHEN json_type(j.value, '$.__float__') IS NOT NULL THEN 'tagged'
                   WHEN json_type(j.value, '$._type') IS NOT NULL THEN 'media'
                   ELSE 'object' END
        FROM node n, json_each(CASE WHEN n.kind = 'object' THEN n.value ELSE '{}' END) j
    )
    SELECT project, source, parts,
           kind IN ('integer', 'real', 'true', 'false', 'tagged') AS numeric,
           kind = 'tagged' AS tagged
    FROM node WHERE kind <> 'object'
) GROUP BY project, source, parts;

-- Search (FTS5 over name, notes, tags, config: `run_records_fts`, kept by triggers) is set
-- up through sqlite-utils' `enable_fts` by runstore/_store/_runs_table.py, in this
-- migration's transaction.
