-- Each stored snapshot's version (issue 21): discovery adds one when it stores a new snapshot, so
-- a process keeping a parsed snapshot in memory (keyed by connection and version) knows when its
-- copy is out of date without reading the snapshot itself.
ALTER TABLE connection_scopes ADD COLUMN snapshot_version BIGINT NOT NULL DEFAULT 0;
