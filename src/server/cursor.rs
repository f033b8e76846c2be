//! Opaque cursors of paged listings. A cursor names the last item a page
//! showed (registration time and content id) and is sealed with an HMAC
//! over the account and the listing it belongs to, so that it positions
//! only within that account's own listing: a cursor made up, altered, or
//! taken from another account or role is refused with 400, and so cannot
//! be used to probe which contents or times exist.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::{ApiError, ApiResult};
use crate::crypto::{ct_eq, hmac_sha256};
use crate::store::PageKey;

/// First byte of every cursor: its layout.
const VERSION: u8 = 1;

/// Bytes of the HMAC kept (128 bits: no forgery by guessing).
const TAG: usize = 16;

/// Longest id a cursor carries (content ids are 32 hex digits).
const ID_MAX: usize = 64;

fn tag(secret: &[u8], email: &str, role: &str, body: &[u8]) -> [u8; TAG] {
    let h = hmac_sha256(
        secret,
        &[
            b"rightsfs page cursor\0",
            role.as_bytes(),
            b"\0",
            email.as_bytes(),
            b"\0",
            body,
        ],
    );
    let mut t = [0u8; TAG];
    t.copy_from_slice(&h[..TAG]);
    t
}

/// The cursor that continues `email`'s `role` listing after `key`.
pub fn seal(secret: &[u8], email: &str, role: &str, key: &PageKey) -> String {
    let mut body = Vec::with_capacity(1 + 8 + key.id.len() + TAG);
    body.push(VERSION);
    body.extend_from_slice(&key.registered_at.to_be_bytes());
    body.extend_from_slice(key.id.as_bytes());
    let t = tag(secret, email, role, &body);
    body.extend_from_slice(&t);
    URL_SAFE_NO_PAD.encode(body)
}

/// The position a cursor names, if this server sealed it for `email`'s
/// `role` listing; else 400 `bad_cursor`.
pub fn open(secret: &[u8], email: &str, role: &str, cursor: &str) -> ApiResult<PageKey> {
    let bad = || {
        ApiError::bad_request(
            "bad_cursor",
            "this cursor does not continue your listing; pass the `next` of your previous page as it came, \
             with the same role, or start again without a cursor",
        )
    };
    if cursor.len() > 2 * (1 + 8 + ID_MAX + TAG) {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    if raw.len() <= 1 + 8 + TAG || raw[0] != VERSION {
        return Err(bad());
    }
    let (body, t) = raw.split_at(raw.len() - TAG);
    if !ct_eq(&tag(secret, email, role, body), t) {
        return Err(bad());
    }
    let registered_at = i64::from_be_bytes(body[1..9].try_into().map_err(|_| bad())?);
    let id = std::str::from_utf8(&body[9..]).map_err(|_| bad())?.to_string();
    Ok(PageKey { registered_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PageKey {
        PageKey {
            registered_at: 1_700_000_000,
            id: "00112233445566778899aabbccddeeff".into(),
        }
    }

    #[test]
    fn a_cursor_opens_only_for_its_account_role_and_server() {
        let c = seal(b"secret", "bob@x.com", "shared", &key());
        assert_eq!(open(b"secret", "bob@x.com", "shared", &c).unwrap(), key());
        for (secret, who, role) in [
            (&b"other"[..], "bob@x.com", "shared"),
            (b"secret", "eve@x.com", "shared"),
            (b"secret", "bob@x.com", "owned"),
        ] {
            assert_eq!(open(secret, who, role, &c).unwrap_err().code, "bad_cursor");
        }
    }

    #[test]
    fn altered_or_malformed_cursors_are_refused() {
        let c = seal(b"secret", "bob@x.com", "shared", &key());
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        raw[3] ^= 1;
        let altered = URL_SAFE_NO_PAD.encode(&raw);
        for bad in [altered.as_str(), "", "!!!", "AQ", &"A".repeat(1000)] {
            assert_eq!(
                open(b"secret", "bob@x.com", "shared", bad).unwrap_err().code,
                "bad_cursor"
            );
        }
    }
}
