-- runstore schema, version 5: run_list shows a running run whose writer stopped
-- beating (no heartbeat for 30 s: its process was killed or its machine died) as
-- 'crashed', as wandb does. The runs table keeps what was last written.

DROP VIEW run_list;

CREATE VIEW run_list AS
SELECT
    r.run_key, r.name,
    CASE WHEN r.state = 'running'
              AND (julianday('now') - julianday(coalesce(r.heartbeat_at, r.created_at)))
                  * 86400.0 > 30
         THEN 'crashed' ELSE r.state END AS state,
    r.project, r.entity, r.id, r.run_group, r.job_type,
    r.tags, r.created_at,
    CASE WHEN r.state = 'running'
         THEN round((julianday(coalesce(r.heartbeat_at, r.created_at))
                     - julianday(r.created_at)) * 86400.0, 1)
         ELSE round(r.runtime, 1) END AS runtime,
    r.summary, r.config, r.notes, r.git_commit, r.host
FROM runs r;
