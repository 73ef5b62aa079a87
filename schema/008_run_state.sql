-- runstore schema, version 8: one state everywhere.
--
-- Until now a killed run read `crashed` in run_list (version 5) but `running` in the runs
-- table, the table SQL users query first. The table becomes `run_records` (what was
-- written, by the run's process or by a reader that saw the process gone) and `runs` is
-- now a view with the same columns, whose `state` and `runtime` every reader shares:
--
-- * state: a `running` run whose heartbeat is older than 30 s is `crashed` (its process
--   was killed, or its machine died). 30 is runstore._store._liveness.STALE_AFTER_S;
--   tests/test_liveness.py checks that the two agree.
-- * runtime: as the run's process last recorded it (every write and heartbeat records
--   it, resumes included), else the time from creation to the last heartbeat. It never
--   counts on from the last sign of life.
--
-- Writes through the view still work (INSTEAD OF triggers pass them to run_records); a
-- computed column written with the value it shows is left as recorded.
-- `pid_started` records when the run's process started (an opaque token: Linux's boot id
-- and start time in clock ticks, or psutil's create time), so a later process given the
-- same pid is not taken for the run's writer.

DROP VIEW run_list;

ALTER TABLE runs ADD COLUMN pid_started TEXT;

-- Renaming rewrites the references to it: the foreign keys of steps, run_events,
-- run_files, console_lines, system_metrics and runs.parent_run_key, and the views.
ALTER TABLE runs RENAME TO run_records;

CREATE VIEW runs AS
SELECT
    run_key, entity, project, id, name,
    CASE WHEN state = 'running'
              AND (julianday('now') - julianday(coalesce(heartbeat_at, created_at)))
                  * 86400.0 > 30
         THEN 'crashed' ELSE state END AS state,
    notes, tags, run_group, job_type, config, summary, metric_definitions,
    created_at, heartbeat_at, finished_at,
    coalesce(runtime, (julianday(coalesce(heartbeat_at, created_at)) - julianday(created_at))
                      * 86400.0) AS runtime,
    exit_code, host, pid, os_user, program, args, python_version,
    git_commit, git_remote, git_branch, git_dirty,
    parent_run_key, fork_step, resume_count, synced_from, pid_started
FROM run_records;

CREATE TRIGGER runs_insert INSTEAD OF INSERT ON runs
BEGIN
    INSERT INTO run_records (
        run_key, entity, project, id, name, state, notes, tags, run_group, job_type,
        config, summary, metric_definitions, created_at, heartbeat_at, finished_at,
        runtime, exit_code, host, pid, os_user, program, args, python_version,
        git_commit, git_remote, git_branch, git_dirty,
        parent_run_key, fork_step, resume_count, synced_from, pid_started)
    VALUES (
        NEW.run_key, NEW.entity, NEW.project, NEW.id, NEW.name,
        coalesce(NEW.state, 'running'), NEW.notes, coalesce(NEW.tags, '[]'),
        NEW.run_group, NEW.job_type, coalesce(NEW.config, '{}'),
        coalesce(NEW.summary, '{}'), coalesce(NEW.metric_definitions, '{}'),
        NEW.created_at, NEW.heartbeat_at, NEW.finished_at,
        NEW.runtime, NEW.exit_code, NEW.host, NEW.pid, NEW.os_user, NEW.program, NEW.args,
        NEW.python_version, NEW.git_commit, NEW.git_remote, NEW.git_branch, NEW.git_dirty,
        NEW.parent_run_key, NEW.fork_step, coalesce(NEW.resume_count, 0), NEW.synced_from,
        NEW.pid_started);
END;

CREATE TRIGGER runs_update INSTEAD OF UPDATE ON runs
BEGIN
    UPDATE run_records SET
        run_key = NEW.run_key, entity = NEW.entity, project = NEW.project, id = NEW.id,
        name = NEW.name,
        state = CASE WHEN NEW.state IS OLD.state THEN state ELSE NEW.state END,
        notes = NEW.notes, tags = NEW.tags, run_group = NEW.run_group,
        job_type = NEW.job_type, config = NEW.config, summary = NEW.summary,
        metric_definitions = NEW.metric_definitions, created_at = NEW.created_at,
        heartbeat_at = NEW.heartbeat_at, finished_at = NEW.finished_at,
        runtime = CASE WHEN NEW.runtime IS OLD.runtime THEN runtime ELSE NEW.runtime END,
        exit_code = NEW.exit_code, host = NEW.host, pid = NEW.pid, os_user = NEW.os_user,
        program = NEW.program, args = NEW.args, python_version = NEW.python_version,
        git_commit = NEW.git_commit, git_remote = NEW.git_remote,
        git_branch = NEW.git_branch, git_dirty = NEW.git_dirty,
        parent_run_key = NEW.parent_run_key, fork_step = NEW.fork_step,
        resume_count = NEW.resume_count, synced_from = NEW.synced_from,
        pid_started = NEW.pid_started
    WHERE run_key = OLD.run_key;
END;

CREATE TRIGGER runs_delete INSTEAD OF DELETE ON runs
BEGIN
    DELETE FROM run_records WHERE run_key = OLD.run_key;
END;

-- run_list reads the view, so it shows the same state and runtime.
CREATE VIEW run_list AS
SELECT
    r.run_key, r.name, r.state, r.project, r.entity, r.id, r.run_group, r.job_type,
    r.tags, r.created_at, round(r.runtime, 1) AS runtime,
    r.summary, r.config, r.notes, r.git_commit, r.host
FROM runs r;
