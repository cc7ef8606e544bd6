-- Rollups in one pass (issue 4): raw pageviews are never rewritten, so `pageviews.session_id` goes.
-- A session's pageviews are the site's non-bot pageviews with `created_at` from `started_at` to
-- `last_seen_at` whose `visitor_id` is the session's, or one of its `later_visitor_ids` (',id,id,':
-- the same visitor under the salts of later UTC days the session runs into; '' for most sessions).
-- The hourly recompute of a whole UTC day stages the day's totals in `daily_stats_staged`; the daily
-- recompute adopts them while the day's raw rows still have the count and largest id they record.
-- Same effect as ../sqlite/0007_sessions_by_visitor.sql.
ALTER TABLE sessions ADD COLUMN later_visitor_ids TEXT NOT NULL DEFAULT '';
UPDATE sessions SET later_visitor_ids = x.ids
FROM (
    SELECT d.session_id, ',' || string_agg(CAST(d.visitor_id AS TEXT), ',' ORDER BY d.visitor_id) || ',' AS ids
    FROM (
        SELECT DISTINCT p.session_id, p.visitor_id
        FROM pageviews p JOIN sessions s ON s.id = p.session_id
        WHERE p.visitor_id <> s.visitor_id
    ) AS d
    GROUP BY d.session_id
) AS x
WHERE sessions.id = x.session_id;
ALTER TABLE pageviews DROP COLUMN session_id;
-- `sessions_site_time_totals` (0004) leads with the same columns and serves every range read.
DROP INDEX sessions_site_time;

CREATE TABLE daily_stats_staged (
    site_id              BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_bucket           BIGINT NOT NULL,
    pageview_count       BIGINT NOT NULL,
    unique_session_count BIGINT NOT NULL,
    raw_count            BIGINT NOT NULL,
    raw_max_id           BIGINT NOT NULL,
    PRIMARY KEY (site_id, day_bucket)
);
