-- Statistics (issue 5): each day's visit totals (sessions started that UTC day, their bounces and
-- total duration), kept beside the day's breakdowns and refreshed with them, so the totals of a
-- month or a year are a sum of per-day rows.
ALTER TABLE daily_breakdown_sources ADD COLUMN visits BIGINT NOT NULL DEFAULT 0;
ALTER TABLE daily_breakdown_sources ADD COLUMN bounces BIGINT NOT NULL DEFAULT 0;
ALTER TABLE daily_breakdown_sources ADD COLUMN duration_ms BIGINT NOT NULL DEFAULT 0;
