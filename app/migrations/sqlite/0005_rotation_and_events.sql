-- Rotation: GitLab's id and creation date of the stored token (a rotated token gets a new id),
-- and when Onramp last rotated it. Filled by the next save, replace, rotation or re-check.
ALTER TABLE integrations ADD COLUMN token_id BIGINT;
ALTER TABLE integrations ADD COLUMN token_created_at TEXT;
ALTER TABLE integrations ADD COLUMN rotated_at BIGINT;

-- A rotation is written down before GitLab is asked, at most once per (connection, token id):
-- GitLab revokes a whole token family when an already rotated token is rotated again, so the
-- unique index is what keeps two processes, a retry or a restart from killing the connection.
-- state: sending (asked, answer not yet recorded; lease_until says until when the asker may still
-- answer) | rotated | lost (the old token is revoked and the answer is gone) | refused (GitLab said
-- no; nothing was revoked) | kept (the answer was lost, but the old token still works: nothing was
-- rotated, a later rotation may try again).
CREATE TABLE rotations (
    id TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    token_id BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending', 'rotated', 'lost', 'refused', 'kept')),
    trigger TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    new_expires_at TEXT,
    message TEXT NOT NULL DEFAULT '',
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE UNIQUE INDEX rotations_token ON rotations(integration_id, token_id);
CREATE INDEX rotations_state ON rotations(state, lease_until);

-- What happened to a connection that someone should hear about (rotated, rotation failed, a
-- re-check failed, expiry ahead): shown on its page and in the API, mailed when SMTP is set up.
-- once_key makes an event happen once (one mail per event, not one a day).
CREATE TABLE connection_events (
    id TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    fix_step BIGINT,
    once_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    mail_state TEXT NOT NULL DEFAULT 'pending' CHECK (mail_state IN ('pending', 'sending', 'sent', 'failed', 'none')),
    mail_attempts BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX connection_events_once ON connection_events(once_key);
CREATE INDEX connection_events_connection ON connection_events(integration_id, created_at);
CREATE INDEX connection_events_mail ON connection_events(mail_state, created_at);
