-- runstore schema, version 9: artifacts, kept locally (wandb.Artifact, run.log_artifact,
-- run.use_artifact under RUNSTORE_AS_WANDB, or runstore's own run.log_artifact).
--
-- An artifact is a name within (entity, project) with a type; each log_artifact of new
-- content adds a version v0, v1, ... (logging content identical to an existing version
-- reuses that version). Aliases (`latest`, `best`, user-chosen) point at one version each.
-- A version's files are content-addressed: up to 16 MiB their bytes are a row of `blobs`
-- (shared with run_files, deduplicated by SHA-256); a larger file lives beside the store
-- in <dir>/artifacts/<sha[:2]>/<sha256>, named in `location`. A reference
-- (add_reference) records its URI and is never copied. Lineage: `logged_by` is the run
-- that logged a version, `artifact_usage` the runs that used it.

CREATE TABLE artifacts (
    artifact_key INTEGER PRIMARY KEY,
    entity       TEXT NOT NULL,
    project      TEXT NOT NULL,
    name         TEXT NOT NULL,
    type         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (entity, project, name)
);

CREATE TABLE artifact_versions (
    version_key  INTEGER PRIMARY KEY,
    artifact_key INTEGER NOT NULL REFERENCES artifacts (artifact_key) ON DELETE CASCADE,
    version      INTEGER NOT NULL,                 -- 0 for v0, 1 for v1, ...
    digest       TEXT NOT NULL,                    -- SHA-256 over the sorted (path, sha256/ref)
    description  TEXT,
    metadata     TEXT NOT NULL DEFAULT '{}',       -- JSON object
    size         INTEGER NOT NULL,                 -- bytes of its stored files
    file_count   INTEGER NOT NULL,
    logged_by    INTEGER REFERENCES run_records (run_key) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (artifact_key, version)
);
CREATE INDEX artifact_versions_digest ON artifact_versions (artifact_key, digest);
CREATE INDEX artifact_versions_logged_by ON artifact_versions (logged_by);

CREATE TABLE artifact_aliases (
    artifact_key INTEGER NOT NULL REFERENCES artifacts (artifact_key) ON DELETE CASCADE,
    alias        TEXT NOT NULL,
    version_key  INTEGER NOT NULL REFERENCES artifact_versions (version_key) ON DELETE CASCADE,
    PRIMARY KEY (artifact_key, alias)
) WITHOUT ROWID;

CREATE TABLE artifact_files (
    version_key INTEGER NOT NULL REFERENCES artifact_versions (version_key) ON DELETE CASCADE,
    path        TEXT NOT NULL,          -- the name inside the artifact, e.g. model.ckpt
    sha256      TEXT,                   -- NULL for a reference without a checksum
    size        INTEGER,
    location    TEXT,                   -- NULL: in blobs; else relative to the store's dir
    ref         TEXT,                   -- add_reference: the URI (not copied)
    PRIMARY KEY (version_key, path)
) WITHOUT ROWID;

CREATE TABLE artifact_usage (
    run_key     INTEGER NOT NULL REFERENCES run_records (run_key) ON DELETE CASCADE,
    version_key INTEGER NOT NULL REFERENCES artifact_versions (version_key) ON DELETE CASCADE,
    used_at     TEXT NOT NULL,
    PRIMARY KEY (run_key, version_key)
) WITHOUT ROWID;
CREATE INDEX artifact_usage_version ON artifact_usage (version_key);

-- One row per artifact version with its names, for SQL users and Datasette.
CREATE VIEW artifact_list AS
SELECT
    v.version_key, a.entity, a.project, a.name, a.type, 'v' || v.version AS version,
    (SELECT json_group_array(alias) FROM artifact_aliases x
      WHERE x.version_key = v.version_key) AS aliases,
    v.digest, v.size, v.file_count, v.description, v.metadata,
    r.id AS logged_by_run, v.created_at,
    (SELECT json_group_array(u.id) FROM artifact_usage g JOIN run_records u
      ON u.run_key = g.run_key WHERE g.version_key = v.version_key) AS used_by_runs
FROM artifact_versions v
JOIN artifacts a ON a.artifact_key = v.artifact_key
LEFT JOIN run_records r ON r.run_key = v.logged_by;
