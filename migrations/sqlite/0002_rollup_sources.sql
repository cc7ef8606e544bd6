-- Exact rollups (issue 4). Each hourly/daily row remembers how many raw pageview rows (bots included)
-- and which largest id it was computed from, so a backfill can find every window whose raw data
-- changed since, not only the windows that have no row. Same text on both backends.
ALTER TABLE hourly_stats ADD COLUMN raw_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hourly_stats ADD COLUMN raw_max_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE daily_stats ADD COLUMN raw_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE daily_stats ADD COLUMN raw_max_id BIGINT NOT NULL DEFAULT 0;
