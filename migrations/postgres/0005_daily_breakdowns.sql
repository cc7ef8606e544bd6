-- Statistics (issue 5): per-day breakdowns (pages, referrers, UTM, browsers, OS, devices, countries,
-- entry and exit pages) of each site, so a month or a year of breakdowns is read from a few thousand
-- rows instead of millions of pageviews. Filled by the stats reader from raw rows, a UTC day at a
-- time, whenever the day's `daily_stats` row shows its raw pageviews changed (`raw_count`,
-- `raw_max_id` remembered in `daily_breakdown_sources`).
CREATE TABLE daily_breakdowns (
    site_id    BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_bucket BIGINT NOT NULL,
    dimension  TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    hits       BIGINT NOT NULL,
    visitors   BIGINT NOT NULL,
    PRIMARY KEY (site_id, dimension, day_bucket, value)
);

CREATE TABLE daily_breakdown_sources (
    site_id    BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_bucket BIGINT NOT NULL,
    raw_count  BIGINT NOT NULL,
    raw_max_id BIGINT NOT NULL,
    PRIMARY KEY (site_id, day_bucket)
);
