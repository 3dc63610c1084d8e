-- Connect sessions, events and webhooks (issue 22).

-- The people a platform sends into the wizard, found again by the platform's own id for them
-- (per key). Their users row has no password (it never verifies) and an address of its own under
-- the reserved .invalid domain, so a platform can never name, take over or block an Onramp
-- account; the address the platform gave is kept here and shown and mailed instead.
CREATE TABLE platform_end_users (
    key_id TEXT NOT NULL REFERENCES platform_keys(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    user_id TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, external_id)
);

-- A platform's invitation of one end user into the wizard: a link, single use (only the SHA-256
-- of its secret is kept), until expires_at. state: pending (link not opened), opened, completed
-- (a connection was saved: connection_id).
CREATE TABLE connect_sessions (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES platform_keys(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    return_url TEXT NOT NULL,
    refresh_url TEXT,
    state TEXT NOT NULL,
    base_url TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'opened', 'completed')),
    connection_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    opened_at BIGINT,
    completed_at BIGINT
);
CREATE INDEX connect_sessions_key ON connect_sessions (key_id, created_at);

-- The browser session a connect session's link opened: the pages say which platform sent it.
ALTER TABLE sessions ADD COLUMN connect_session_id TEXT;

-- What a platform hears, in order (seq), kept 30 days: pulled with /api/v1/events, pushed to
-- its webhook endpoints. data is the JSON the platform sees, never a secret. seq is taken from
-- platform_event_seq in the transaction that inserts the event, which holds that row's lock until
-- it commits: events become visible in seq order, so a reader paging "after seq N" never skips
-- one that commits late with a smaller number (what a sequence or autoincrement would allow).
CREATE TABLE platform_event_seq (
    id BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO platform_event_seq (id, last) VALUES (1, 0);
CREATE TABLE platform_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    -- An event of a workspace (heard by the keys that reach it), or of one key alone (key_id).
    workspace_id TEXT,
    key_id TEXT,
    connection_id TEXT,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX platform_events_workspace ON platform_events (workspace_id, seq);
CREATE INDEX platform_events_key ON platform_events (key_id, seq);
CREATE INDEX platform_events_created ON platform_events (created_at);

-- A platform's webhook endpoint. Its signing secret is sealed with the instance key (it must be
-- read to sign). events: space-separated types. failing_since: the first failed attempt of the
-- current run of failures (5 days of them disable the endpoint).
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES platform_keys(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret_key_id TEXT NOT NULL,
    secret_nonce BLOB NOT NULL,
    secret_ciphertext BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    failing_since BIGINT,
    disabled_at BIGINT
);
CREATE INDEX webhook_endpoints_key ON webhook_endpoints (key_id);

-- The outbox: one row per (event, endpoint), written before anything is sent. A sender claims a
-- due row by setting lease_until (one statement), sends, then records the attempt and the next
-- try or the end. state: pending, delivered, failed (given up).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    lease_holder TEXT,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);

-- Every attempt of a delivery: its HTTP status (or none: error), when, how long.
CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    -- 1 for the first try of the delivery, 2 for the next...
    number BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status BIGINT,
    error TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, number);
