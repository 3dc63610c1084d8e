-- API tokens that may read operator endpoints (/metrics). Created only from the command line
-- (onramp admin-token), never from the web.
ALTER TABLE api_tokens ADD COLUMN admin BIGINT NOT NULL DEFAULT 0;
