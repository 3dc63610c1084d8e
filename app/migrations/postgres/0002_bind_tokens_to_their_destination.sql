-- Each stored token is bound (AEAD associated data) to its row, owner, base URL and CA; see
-- store::crypto::bind. Rows sealed before carry version 1 (bound to the row id only) until
-- Onramp re-seals them at start (store::integrations::rotate_key with the current key).
ALTER TABLE integrations ADD COLUMN aad_version BIGINT NOT NULL DEFAULT 1;
-- Kept checks and unclaimed flashes live for minutes: dropped rather than re-sealed.
DELETE FROM checks;
DELETE FROM flashes;
