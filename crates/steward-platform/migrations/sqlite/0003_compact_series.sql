-- SLI series keyed by an integer id: points and rollups become small rows clustered by
-- (series, time), which makes ingest and range reads cheap and needs no extra index.

CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    workspace TEXT NOT NULL,
    slx TEXT NOT NULL,
    -- '' for the SLI value itself, the sub-name otherwise.
    metric TEXT NOT NULL,
    UNIQUE (workspace, slx, metric)
);

CREATE TABLE points (
    series INTEGER NOT NULL,
    time INTEGER NOT NULL,
    value REAL NOT NULL,
    run_id TEXT,
    PRIMARY KEY (series, time)
) WITHOUT ROWID;

CREATE TABLE rollups (
    series INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    last REAL NOT NULL,
    last_time INTEGER NOT NULL,
    PRIMARY KEY (series, bucket)
) WITHOUT ROWID;

INSERT OR IGNORE INTO series (workspace, slx, metric) SELECT DISTINCT workspace, slx, metric FROM sli_values;
INSERT OR IGNORE INTO series (workspace, slx, metric) SELECT DISTINCT workspace, slx, metric FROM sli_rollups;
INSERT OR IGNORE INTO points (series, time, value, run_id)
    SELECT s.id, v.time, v.value, v.run_id FROM sli_values v JOIN series s USING (workspace, slx, metric);
INSERT OR IGNORE INTO rollups (series, bucket, count, sum, min, max, last, last_time)
    SELECT s.id, r.bucket, r.count, r.sum, r.min, r.max, r.last, r.last_time FROM sli_rollups r JOIN series s USING (workspace, slx, metric);
DROP TABLE sli_values;
DROP TABLE sli_rollups;
