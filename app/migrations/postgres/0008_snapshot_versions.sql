-- Each stored snapshot's version (issue 21): discovery adds one when it stores a new snapshot, so
-- a process keeping a parsed snapshot in memory (keyed by connection and version) knows when its
-- copy is out of date without reading the snapshot itself. And the counts a page shows (projects,
-- unreadable, included, included new) with the selection they counted (JSON), so the connection's
-- page never reads the snapshot.
ALTER TABLE connection_scopes ADD COLUMN snapshot_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connection_scopes ADD COLUMN counts TEXT;
