-- The queue and the running runs are small slices of a table that keeps every run: index just
-- those slices, in the order they are read (oldest queued run first, ties by id), so leasing
-- needs no sort and a status change does not rewrite index entries of finished runs.
DROP INDEX runs_queue;
DROP INDEX runs_leases;
CREATE INDEX runs_queue ON runs (location, created_at, id) WHERE status = 'queued';
CREATE INDEX runs_running ON runs (runner_id, lease_expires_at) WHERE status = 'running';
