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
CREATE TABLE IF NOT EXISTS tokens (hash BLOB PRIMARY KEY, kind TEXT NOT NULL, email TEXT NOT NULL,
    device_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_device ON tokens (device_id);
CREATE TABLE IF NOT EXISTS content (id TEXT PRIMARY KEY, owner TEXT NOT NULL, pl TEXT NOT NULL, policy TEXT NOT NULL,
    revoked INTEGER NOT NULL, created_at INTEGER NOT NULL, registered_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS content_owner ON content (owner);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, content_id TEXT NOT NULL, time INTEGER NOT NULL,
    email TEXT NOT NULL, device_id TEXT NOT NULL, rights TEXT NOT NULL, result TEXT NOT NULL, reason TEXT NOT NULL,
    client_addr TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_content ON audit (content_id, seq);
CREATE TABLE IF NOT EXISTS invitations (content_id TEXT NOT NULL, recipient TEXT NOT NULL, sent_at INTEGER NOT NULL,
    PRIMARY KEY (content_id, recipient));
