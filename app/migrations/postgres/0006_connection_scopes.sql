-- What a connection covers: the last discovery of the groups and projects its token's user can
-- reach (a JSON snapshot, with its time), the selection of what Onramp reads (saved, and a draft
-- the picker edits), and the last preview of a selection. One row per connection.
-- state: discovering (started_at says since when; another start waits until it is older than the
-- lease) | ready | failed (error says why; the previous snapshot, if any, is kept).
CREATE TABLE connection_scopes (
    integration_id TEXT PRIMARY KEY REFERENCES integrations(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('discovering', 'ready', 'failed')),
    started_at BIGINT NOT NULL,
    discovered_at BIGINT,
    groups_found BIGINT NOT NULL DEFAULT 0,
    projects_found BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    snapshot TEXT,
    selection TEXT,
    saved_at BIGINT,
    draft TEXT,
    preview TEXT,
    preview_of TEXT
);
CREATE INDEX connection_scopes_workspace ON connection_scopes(workspace_id);
