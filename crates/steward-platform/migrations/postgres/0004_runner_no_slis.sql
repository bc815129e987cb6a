-- Runners that do not take SLIs (replicas that are not their group's elected leader).
ALTER TABLE runners ADD COLUMN no_slis BIGINT NOT NULL DEFAULT 0;
