-- Times are milliseconds since the Unix epoch; ids are UUIDs as text; JSON is text.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE workspaces (
    name TEXT PRIMARY KEY,
    -- Every file of the tree outside slxs/ (workspace.yaml included), as {path: text}.
    files_json TEXT NOT NULL,
    imported_at INTEGER NOT NULL
);

CREATE TABLE slxs (
    workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    full_name TEXT NOT NULL,
    alias TEXT,
    statement TEXT,
    -- The SLX directory as {file name: text}, so it can be exported byte for byte.
    files_json TEXT NOT NULL,
    files_hash TEXT NOT NULL,
    -- Parsed specs (model JSON), NULL when the SLX has no such document.
    sli_json TEXT,
    runbook_json TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (workspace, name)
);
CREATE INDEX slxs_full_name ON slxs (workspace, full_name);

CREATE TABLE desired_state (
    location TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    doc_json TEXT NOT NULL
);

CREATE TABLE registration_tokens (
    token_hash TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE runners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    location TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX sessions_workspace ON sessions (workspace, created_at);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    session_id TEXT,
    workspace TEXT NOT NULL,
    slx TEXT NOT NULL,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_id TEXT,
    runner_id TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    result_json TEXT,
    sli_value REAL
);
CREATE INDEX runs_queue ON runs (location, status, created_at);
CREATE INDEX runs_leases ON runs (status, lease_expires_at);
CREATE INDEX runs_slx ON runs (workspace, slx, created_at);
CREATE INDEX runs_session ON runs (session_id);
CREATE INDEX runs_created ON runs (created_at);

CREATE TABLE issues (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    workspace TEXT NOT NULL,
    slx TEXT NOT NULL,
    task_name TEXT NOT NULL,
    title TEXT NOT NULL,
    severity INTEGER NOT NULL,
    status TEXT NOT NULL,
    occurrences INTEGER NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    resolved_at INTEGER,
    last_run_id TEXT NOT NULL,
    -- The latest occurrence as raised (issues.jsonl line).
    issue_json TEXT NOT NULL
);
CREATE INDEX issues_by_slx ON issues (workspace, slx, status);
CREATE INDEX issues_by_status ON issues (status, severity, last_seen_at);

CREATE TABLE sli_values (
    workspace TEXT NOT NULL,
    slx TEXT NOT NULL,
    -- '' for the SLI value itself, the sub-name otherwise.
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    time INTEGER NOT NULL,
    run_id TEXT
);
CREATE INDEX sli_values_series ON sli_values (workspace, slx, metric, time);

CREATE TABLE artifacts (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
);
