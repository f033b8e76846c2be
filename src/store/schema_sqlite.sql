CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
DROP TABLE IF EXISTS codes;
CREATE TABLE IF NOT EXISTS signin_codes (email TEXT PRIMARY KEY, seed BLOB NOT NULL, expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL, next_try INTEGER NOT NULL, delay INTEGER NOT NULL, sends INTEGER NOT NULL,
    next_send INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rate (key TEXT NOT NULL, win INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (key, win));
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL,
    public_key BLOB NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS devices_email ON devices (email);
-- Reader-only devices (browsers): a table of its own so that databases made
-- before it need no migration.
CREATE TABLE IF NOT EXISTS reader_devices (id TEXT PRIMARY KEY);
-- Devices removed from their accounts (never those replaced by the same
-- machine signing in again), kept for good: readers refuse every version
-- such a device signed. Ids are random and name no account.
CREATE TABLE IF NOT EXISTS removed_devices (id TEXT PRIMARY KEY, removed_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (hash BLOB PRIMARY KEY, kind TEXT NOT NULL, email TEXT NOT NULL,
    device_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_device ON tokens (device_id);
CREATE TABLE IF NOT EXISTS content (id TEXT PRIMARY KEY, owner TEXT NOT NULL, pl TEXT NOT NULL, policy TEXT NOT NULL,
    revoked INTEGER NOT NULL, created_at INTEGER NOT NULL, registered_at INTEGER NOT NULL);
-- Owned listings page by (registered_at, id) within an owner.
DROP INDEX IF EXISTS content_owner;
CREATE INDEX IF NOT EXISTS content_owner_time ON content (owner, registered_at, id);
-- Whom each live (not revoked) content is shared with: one row per
-- principal (an address, or *@domain), written with every policy change,
-- so that "shared with me" pages through the caller's rows by this key.
-- registered_at and owner are the content's, copied so that a page needs
-- no other table; ends_at is when the grant stops giving rights.
CREATE TABLE IF NOT EXISTS grants (principal TEXT NOT NULL, registered_at INTEGER NOT NULL, content_id TEXT NOT NULL,
    owner TEXT NOT NULL, ends_at INTEGER NOT NULL, PRIMARY KEY (principal, registered_at, content_id));
CREATE INDEX IF NOT EXISTS grants_content ON grants (content_id);
-- One-time data migrations already done (by name).
CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, content_id TEXT NOT NULL, time INTEGER NOT NULL,
    email TEXT NOT NULL, device_id TEXT NOT NULL, rights TEXT NOT NULL, result TEXT NOT NULL, reason TEXT NOT NULL,
    client_addr TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_content ON audit (content_id, seq);
CREATE TABLE IF NOT EXISTS invitations (content_id TEXT NOT NULL, recipient TEXT NOT NULL, sent_at INTEGER NOT NULL,
    PRIMARY KEY (content_id, recipient));
