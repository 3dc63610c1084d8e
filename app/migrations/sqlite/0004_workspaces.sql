-- Workspaces own GitLab connections; accounts are members with a role. Every existing account
-- gets a personal workspace with the account's id (so a token sealed for "owner = account id"
-- still opens: the binding names the workspace now, and it has that id), and its connection
-- moves there. Nothing is dropped.
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- The workspace the account works in (pages, the wizard's step 12).
ALTER TABLE users ADD COLUMN current_workspace_id TEXT;

INSERT INTO workspaces (id, name, created_at) SELECT id, substr(email, 1, instr(email, '@') - 1) || '''s workspace', created_at FROM users;
INSERT INTO memberships (workspace_id, user_id, role, created_at) SELECT id, id, 'owner', created_at FROM users;
UPDATE users SET current_workspace_id = id;

-- Connections: several per workspace, one per (instance, GitLab user). The account that saved
-- one is kept as created_by, without a foreign key: the connection outlives the account.
CREATE TABLE connections_new (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    base_url TEXT NOT NULL,
    gitlab_version TEXT,
    username TEXT NOT NULL,
    token_name TEXT,
    token_last4 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT,
    extra_ca_pem TEXT NOT NULL,
    key_id TEXT NOT NULL,
    token_nonce BLOB NOT NULL,
    token_ciphertext BLOB NOT NULL,
    last_check_at BIGINT NOT NULL,
    last_check_ok BIGINT NOT NULL,
    last_report TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    aad_version BIGINT NOT NULL DEFAULT 1
);
INSERT INTO connections_new (id, workspace_id, created_by, base_url, gitlab_version, username, token_name,
    token_last4, scopes, expires_at, extra_ca_pem, key_id, token_nonce, token_ciphertext, last_check_at,
    last_check_ok, last_report, created_at, updated_at, aad_version)
SELECT id, user_id, user_id, base_url, gitlab_version, username, token_name, token_last4, scopes, expires_at,
    extra_ca_pem, key_id, token_nonce, token_ciphertext, last_check_at, last_check_ok, last_report, created_at,
    updated_at, aad_version
FROM integrations;
DROP TABLE integrations;
ALTER TABLE connections_new RENAME TO integrations;
CREATE UNIQUE INDEX integrations_instance_user ON integrations(workspace_id, base_url, username);
CREATE INDEX integrations_due ON integrations(last_check_at);

-- Invitations: a link shown once (only its SHA-256 is stored), single use, 7 days.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    email TEXT,
    next_path TEXT,
    invited_by_email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'declined', 'revoked')),
    ended_at BIGINT
);
CREATE INDEX invitations_workspace ON invitations(workspace_id, state);

-- Who changed what in a workspace, when, from where. Never a secret.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    actor_email TEXT NOT NULL,
    ip TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE INDEX audit_events_workspace_at ON audit_events(workspace_id, at);
