-- SLI series rollups, relay batch ids, alerts.

CREATE TABLE sli_rollups (
    workspace TEXT NOT NULL,
    slx TEXT NOT NULL,
    metric TEXT NOT NULL,
    -- Start of the five-minute bucket, milliseconds since the epoch.
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    last REAL NOT NULL,
    last_time INTEGER NOT NULL,
    PRIMARY KEY (workspace, slx, metric, bucket)
);
CREATE INDEX sli_rollups_bucket ON sli_rollups (bucket);
CREATE INDEX sli_values_time ON sli_values (time);

-- Batches of points a runner relayed, so a retried batch is stored once.
CREATE TABLE metric_batches (
    id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
);

-- Where each alert rule of each SLI stands now (no row: the condition does not hold).
CREATE TABLE alert_states (
    workspace TEXT NOT NULL,
    slx TEXT NOT NULL,
    level TEXT NOT NULL,
    -- 'pending' (condition holds, not for long enough yet) or 'firing'.
    state TEXT NOT NULL,
    since INTEGER NOT NULL,
    event_id TEXT,
    PRIMARY KEY (workspace, slx, level)
);

-- One row per time an alert fired: it starts when it fires and ends when it resolves.
CREATE TABLE alert_events (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    slx TEXT NOT NULL,
    level TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    value REAL,
    last_value REAL,
    message TEXT NOT NULL
);
CREATE INDEX alert_events_active ON alert_events (ended_at, started_at);
CREATE INDEX alert_events_slx ON alert_events (workspace, slx, started_at);
