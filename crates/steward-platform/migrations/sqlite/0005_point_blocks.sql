-- SLI points in blocks: the points of one series from one push (or one run) share a row, so
-- writing a point appends a few bytes instead of inserting a row. Blocks are found by series
-- and time range. Points of the earlier `points` table are moved into blocks when the
-- platform opens the database (store::sli::move_legacy_points), which then drops the table.
CREATE TABLE point_blocks (
    id INTEGER PRIMARY KEY,
    series INTEGER NOT NULL,
    first_time INTEGER NOT NULL,
    last_time INTEGER NOT NULL,
    count INTEGER NOT NULL,
    run_id TEXT,
    data BLOB NOT NULL
);
CREATE INDEX point_blocks_series ON point_blocks (series, last_time);
