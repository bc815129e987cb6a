-- The queue and the running runs are small slices of a table that keeps every run: index just
-- those slices, in the order they are read (oldest queued run first, ties by id), so leasing
-- needs no sort and a status change does not rewrite index entries of finished runs. Run ids
-- are time-ordered (UUIDv7), so lists go newest first by id, through the primary key or the
-- SLX index, and no index on the creation time is needed.
DROP INDEX runs_queue;
DROP INDEX runs_leases;
DROP INDEX runs_slx;
DROP INDEX runs_created;
CREATE INDEX runs_queue ON runs (location, created_at, id) WHERE status = 'queued';
CREATE INDEX runs_running ON runs (runner_id, lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_slx ON runs (workspace, slx, id);
