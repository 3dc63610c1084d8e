-- Platform keys (issue 22): an analytics platform's key for /api/v1, sent as
-- `Authorization: Bearer onp_…`. Only the SHA-256 of the key is kept. An instance-level key
-- (workspace_id NULL, made with `onramp platform-key create`) sees the workspaces it created, its
-- tenants; a workspace-level key only its own workspace. scopes and return_origins are
-- space-separated lists (platform::Scopes, platform::ReturnOrigin). A revoked key stays listed.
CREATE TABLE platform_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    return_origins TEXT NOT NULL,
    workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX platform_keys_workspace ON platform_keys (workspace_id);

-- The workspaces an instance-level key created, found again by the platform's own id for them.
CREATE TABLE platform_tenants (
    key_id TEXT NOT NULL REFERENCES platform_keys(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, external_id)
);
CREATE INDEX platform_tenants_workspace ON platform_tenants (key_id, workspace_id);
