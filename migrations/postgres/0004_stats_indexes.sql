-- Statistics (issue 5): visit totals (count, bounces, duration) of a site's sessions over a range are
-- read from this index alone, without a table lookup per session.
CREATE INDEX sessions_site_time_totals ON sessions (site_id, started_at, is_bounce, duration_ms);
