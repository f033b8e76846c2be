//! Plain rows as the store reads and writes them.

/// The sign-in state of one address: its pending code and the backoff
/// that spaces out guesses and mails. The code itself is derived from the
/// seed with the server's code secret, so the same code can be mailed again
/// without being stored (and a stolen database alone does not reveal it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// Normalised address the code was sent to.
    pub email: String,
    /// Random seed of the current code.
    pub seed: Vec<u8>,
    /// Unix time after which the code is refused.
    pub expires_at: i64,
    /// Guesses checked so far (right or wrong), across codes until a sign-in succeeds.
    pub attempts: i64,
    /// Unix time before which no guess is checked.
    pub next_try: i64,
    /// Seconds the next guess after the free ones waits; doubles up to a cap.
    pub delay: i64,
    /// Code mails sent to the address, across codes until a sign-in succeeds.
    pub sends: i64,
    /// Unix time before which no code mail goes to the address.
    pub next_send: i64,
}

/// A device: an RSA public key bound to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Random id handed to the client.
    pub id: String,
    /// Owner of the device.
    pub email: String,
    /// Name chosen by the user.
    pub name: String,
    /// SubjectPublicKeyInfo DER of the device's RSA-2048 key.
    pub public_key: Vec<u8>,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the last authenticated use.
    pub last_seen: i64,
    /// A reader-only device (a browser): its key only decrypts (RSA-OAEP),
    /// so it is never accepted as the signer of a publishing licence.
    pub reader: bool,
}

/// A bearer or refresh token, by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// `access` or `refresh`.
    pub kind: String,
    /// User the token acts for.
    pub email: String,
    /// Device the token was issued to.
    pub device_id: String,
    /// Unix time after which it is refused.
    pub expires_at: i64,
}

/// One registered protected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRecord {
    /// Content id (hex).
    pub id: String,
    /// Owner's address.
    pub owner: String,
    /// The publishing licence as registered (JSON).
    pub pl: String,
    /// The current policy (JSON): the registry is authoritative for sharing.
    pub policy: String,
    /// Whether the owner revoked it.
    pub revoked: bool,
    /// When the file was protected (from the licence).
    pub created_at: i64,
    /// When it was registered here.
    pub registered_at: i64,
}

/// A position in a listing ordered newest first: the last item a page
/// showed, by registration time and then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    /// The item's registration time.
    pub registered_at: i64,
    /// The item's content id.
    pub id: String,
}

impl PageKey {
    /// The key of a record.
    pub fn of(c: &ContentRecord) -> Self {
        Self {
            registered_at: c.registered_at,
            id: c.id.clone(),
        }
    }
}

/// One licence issued or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Content id (hex).
    pub content_id: String,
    /// Unix time.
    pub time: i64,
    /// Caller's address.
    pub email: String,
    /// Caller's device.
    pub device_id: String,
    /// Rights granted (empty when refused).
    pub rights: String,
    /// `issued` or `refused`.
    pub result: String,
    /// Why it was refused, or empty.
    pub reason: String,
    /// Client address as seen by the server.
    pub client_addr: String,
}

/// What must still hold, when a licence's audit row is written, for the
/// licence to be issued: the caller's access token is live and the
/// content's policy and revocation are those the licence was decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCheck {
    /// SHA-256 of the caller's access token.
    pub token_hash: Vec<u8>,
    /// Unix time the token must still be valid at.
    pub now: i64,
    /// The policy (JSON, as stored) the rights were read from.
    pub policy: String,
    /// Whether the content was revoked.
    pub revoked: bool,
}
