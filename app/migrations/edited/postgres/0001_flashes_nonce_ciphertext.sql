-- Accounts, sessions, API tokens, saved GitLab integrations and kept check reports.
-- Times are Unix seconds. The GitLab token is only ever stored encrypted (token_ciphertext).
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE integrations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    base_url TEXT NOT NULL,
    gitlab_version TEXT,
    username TEXT NOT NULL,
    token_name TEXT,
    token_last4 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT,
    extra_ca_pem TEXT NOT NULL,
    key_id TEXT NOT NULL,
    token_nonce BYTEA NOT NULL,
    token_ciphertext BYTEA NOT NULL,
    last_check_at BIGINT NOT NULL,
    last_check_ok BIGINT NOT NULL,
    last_report TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE checks (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    report TEXT NOT NULL,
    typed_base_url TEXT NOT NULL,
    extra_ca_pem TEXT NOT NULL,
    key_id TEXT,
    token_nonce BYTEA,
    token_ciphertext BYTEA,
    created_at BIGINT NOT NULL
);
CREATE INDEX checks_created ON checks(created_at);

-- Secrets shown once after a redirect (a new Onramp API token), sealed, read once.
CREATE TABLE flashes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_id TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
