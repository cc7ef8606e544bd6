-- Charts (issue 5): PostgreSQL's (site, time) index of pageviews gains `is_bot` and `visitor_id` as
-- included columns in this migration (index-only scans of a day of raw rows). SQLite keeps its index
-- as it is: it has no INCLUDE, a wider key costs every ingest INSERT, and its day reads already meet
-- the latency target (bench/README.md). Kept so both trees number their migrations alike.
SELECT 1;
