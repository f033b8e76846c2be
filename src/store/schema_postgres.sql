CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
DROP TABLE IF EXISTS codes;
CREATE TABLE IF NOT EXISTS signin_codes (email TEXT PRIMARY KEY, seed BYTEA NOT NULL, expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL, next_try BIGINT NOT NULL, delay BIGINT NOT NULL, sends BIGINT NOT NULL,
    next_send BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS rate (key TEXT NOT NULL, win BIGINT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (key, win));
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL,
    public_key BYTEA NOT NULL, created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS devices_email ON devices (email);
-- Reader-only devices (browsers): a table of its own so that databases made
-- before it need no migration.
CREATE TABLE IF NOT EXISTS reader_devices (id TEXT PRIMARY KEY);
-- Devices removed from their accounts (never those replaced by the same
-- machine signing in again), kept for good: readers refuse every version
-- such a device signed. Ids are random and name no account.
CREATE TABLE IF NOT EXISTS removed_devices (id TEXT COLLATE "C" PRIMARY KEY, removed_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (hash BYTEA PRIMARY KEY, kind TEXT NOT NULL, email TEXT NOT NULL,
    device_id TEXT NOT NULL, expires_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_device ON tokens (device_id);
CREATE TABLE IF NOT EXISTS content (id TEXT PRIMARY KEY, owner TEXT NOT NULL, pl TEXT NOT NULL, policy TEXT NOT NULL,
    revoked BIGINT NOT NULL, created_at BIGINT NOT NULL, registered_at BIGINT NOT NULL);
-- Owned listings page by (registered_at, id) within an owner.
DROP INDEX IF EXISTS content_owner;
CREATE INDEX IF NOT EXISTS content_owner_time ON content (owner, registered_at, id);
-- Whom each live (not revoked) content is shared with: one row per
-- principal (an address, or *@domain), written with every policy change,
-- so that "shared with me" pages through the caller's rows by this key.
-- registered_at and owner are the content's, copied so that a page needs
-- no other table; ends_at is when the grant stops giving rights.
CREATE TABLE IF NOT EXISTS grants (principal TEXT NOT NULL, registered_at BIGINT NOT NULL, content_id TEXT NOT NULL,
    owner TEXT NOT NULL, ends_at BIGINT NOT NULL, PRIMARY KEY (principal, registered_at, content_id));
CREATE INDEX IF NOT EXISTS grants_content ON grants (content_id);
-- One-time data migrations already done (by name).
CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS audit (seq BIGSERIAL PRIMARY KEY, content_id TEXT NOT NULL, time BIGINT NOT NULL,
    email TEXT NOT NULL, device_id TEXT NOT NULL, rights TEXT NOT NULL, result TEXT NOT NULL, reason TEXT NOT NULL,
    client_addr TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_content ON audit (content_id, seq);
CREATE TABLE IF NOT EXISTS invitations (content_id TEXT NOT NULL, recipient TEXT NOT NULL, sent_at BIGINT NOT NULL,
    PRIMARY KEY (content_id, recipient));
