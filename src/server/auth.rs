//! Sign-up and login by one-time mailed code, tokens and the bearer
//! extractor. Codes are derived from a stored seed with the server's code
//! secret (so a pending code can be mailed again unchanged) and tokens are
//! stored hashed.
//!
//! Nobody can lock an address out: asking for a code again never replaces
//! a live one, and too many guesses or mails only make the address wait
//! (429 with `Retry-After`, doubling up to a cap), they never kill a code.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::mail::code_mail;
use super::metrics::Metrics;
use super::state::AppState;
use crate::api::{AuthStart, AuthStarted, AuthVerify, ErrorBody, RefreshRequest, Refreshed, Tokens};
use crate::crypto::{DevicePublicKey, ct_eq, hmac_sha256, random_array, sha256};
use crate::policy::{Email, format_time, now};
use crate::store::{CodeRecord, DeviceRecord, TokenRecord};
use zeroize::Zeroizing;

/// Seconds a code stays valid.
pub const CODE_TTL: i64 = 600;
/// Guesses checked without waiting; each later one waits out the backoff.
pub const FREE_ATTEMPTS: i64 = 5;
/// Longest wait between two guesses, or two code mails, for one address.
pub const MAX_BACKOFF: i64 = 900;
/// Quiet time after which an address's guess and mail counts start afresh.
const QUIET_RESET: i64 = 3600;
/// Seconds an access token stays valid.
pub const ACCESS_TTL: i64 = 900;
/// Seconds a refresh token stays valid.
pub const REFRESH_TTL: i64 = 90 * 86_400;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub email: Email,
    /// The device the token was issued to.
    pub device_id: String,
}

/// SHA-256 of the request's bearer token: what the store keys tokens by.
pub struct BearerHash(pub [u8; 32]);

impl FromRequestParts<AppState> for BearerHash {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("sign in first: send Authorization: Bearer <access token>"))?;
        Ok(Self(sha256(token.trim().as_bytes())))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let hash = BearerHash::from_request_parts(parts, state).await?;
        Ok(stored_caller(state, &hash.0).await?.0)
    }
}

/// The caller of a live access token as the store has it, and when the token ends.
async fn stored_caller(state: &AppState, hash: &[u8; 32]) -> ApiResult<(Caller, i64)> {
    let rec = state
        .store
        .get_token(hash, "access")
        .await?
        .filter(|t| t.expires_at > now())
        .ok_or_else(|| {
            ApiError::unauthorized("the access token is expired or revoked; get a new one at /v1/auth/refresh")
        })?;
    let email = Email::parse(&rec.email).map_err(ApiError::internal)?;
    state.touch_device(&rec.device_id).await?;
    Ok((
        Caller {
            email,
            device_id: rec.device_id,
        },
        rec.expires_at,
    ))
}

/// The caller of an access token for the licence route: from the token
/// cache (never past the token's end), or with `fresh` (or on a miss) from
/// the store. A cached token may have been logged out since, on this
/// replica or another: the licence is only issued if the transaction that
/// records it finds the token still live (`IssueCheck`), so a cached entry
/// saves the read, never the check. The cache is keyed by the token's
/// hash, so it holds no token and a lookup compares no secret.
pub async fn licence_caller(state: &AppState, hash: &[u8; 32], fresh: bool) -> ApiResult<Caller> {
    if !fresh
        && let Some((caller, ends)) = state.tokens.get(hash)
        && ends > now()
    {
        state.touch_device(&caller.device_id).await?;
        return Ok(caller);
    }
    state.tokens.remove(hash);
    let (caller, ends) = stored_caller(state, hash).await?;
    state.tokens.put(*hash, (caller.clone(), ends));
    Ok(caller)
}

fn parse_email(s: &str) -> ApiResult<Email> {
    Email::parse(s).map_err(|e| ApiError::bad_request("bad_email", e.to_string()))
}

/// The 8-digit code of a seed: only this server (holding the code secret) can compute it.
fn code_of(state: &AppState, email: &Email, seed: &[u8]) -> Zeroizing<String> {
    let h = hmac_sha256(
        state.keys.code_secret.as_ref(),
        &[b"rightsfs sign-in code\0", email.as_str().as_bytes(), b"\0", seed],
    );
    let mut n = [0u8; 8];
    n.copy_from_slice(&h[..8]);
    Zeroizing::new(format!("{:08}", u64::from_le_bytes(n) % 100_000_000))
}

/// Seconds to wait after the `n`-th mail or guess past the free ones.
fn backoff(base: i64, n: i64) -> i64 {
    base.saturating_mul(1 << n.clamp(0, 20)).min(MAX_BACKOFF)
}

fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(random_array::<32>())
}

async fn issue(state: &AppState, kind: &str, email: &Email, device_id: &str, ttl: i64) -> ApiResult<(String, i64)> {
    let token = new_token();
    let expires_at = now() + ttl;
    state
        .store
        .put_token(&TokenRecord {
            hash: sha256(token.as_bytes()).to_vec(),
            kind: kind.into(),
            email: email.to_string(),
            device_id: device_id.into(),
            expires_at,
        })
        .await?;
    Ok((token, expires_at))
}

/// `POST /v1/auth/start`: mails a code. Login and sign-up both create the
/// account on first verification, so the answer never reveals whether an
/// address is known. A live code is mailed again, not replaced, so a
/// stranger asking for codes cannot invalidate the one the owner holds.
#[utoipa::path(
    post, path = "/v1/auth/start", operation_id = "start_sign_in", tag = "account", security(()),
    summary = "Mail a one-time code (sign-up and login alike)",
    request_body = AuthStart,
    responses(
        (status = 202, description = "code sent (whether or not the address is known)", body = AuthStarted),
        (status = 429, description = "the address or client must wait (Retry-After)", body = ErrorBody),
        (status = 502, description = "the mail could not be handed to the relay", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<AuthStart>,
) -> ApiResult<impl IntoResponse> {
    state.limit_ip(&addr).await?;
    let email = parse_email(&req.email)?;
    let t = now();
    let old = state.store.get_code(email.as_str()).await?;
    if let Some(o) = &old
        && o.next_send > t
    {
        let live = if o.expires_at > t {
            "the code already mailed to it still works: use it, or"
        } else {
            "please"
        };
        return Err(ApiError::too_many(
            o.next_send - t,
            format!(
                "a code was mailed to {email} moments ago; {live} ask again in {} s",
                o.next_send - t
            ),
        ));
    }
    let fresh = CodeRecord {
        email: email.to_string(),
        seed: random_array::<16>().to_vec(),
        expires_at: t + CODE_TTL,
        attempts: 0,
        next_try: 0,
        delay: state.signin_backoff,
        sends: 0,
        next_send: 0,
    };
    let mut next = match &old {
        // Counts start afresh after an hour of quiet.
        Some(o) if o.expires_at + QUIET_RESET < t => fresh,
        Some(o) if o.expires_at > t => o.clone(),
        Some(o) => CodeRecord {
            seed: fresh.seed,
            expires_at: fresh.expires_at,
            ..o.clone()
        },
        None => fresh,
    };
    next.sends += 1;
    next.next_send = t + backoff(state.signin_backoff, next.sends - 1);
    if !state.store.put_code(&next, old.as_ref()).await? {
        return Err(ApiError::too_many(
            1,
            format!("another request for {email} is being handled; retry in a second"),
        ));
    }
    let code = code_of(&state, &email, &next.seed);
    let (subject, body) = code_mail(&code, req.signup, &state.public_url);
    state.mailer.send(email.as_str(), &subject, body).await.map_err(|e| {
        tracing::error!(error = %e, to = %email, "cannot send the code mail");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "mail_failed",
            "the server could not send the code mail; try again later or tell the server's operator",
        )
    })?;
    Metrics::inc(&state.metrics.codes_sent);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(AuthStarted {
            sent: true,
            expires_in: next.expires_at - t,
        }),
    ))
}

/// Checks the code; consumes it on success. The guess is counted before it
/// is compared, in one statement, so no burst of guesses gets more checks
/// than the backoff allows.
async fn check_code(state: &AppState, email: &Email, code: &str) -> ApiResult<()> {
    let invalid = |m: String| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_code", m);
    let again = "request a new code with /v1/auth/start";
    let t = now();
    let Some(rec) = state
        .store
        .claim_attempt(email.as_str(), t, FREE_ATTEMPTS, MAX_BACKOFF)
        .await?
    else {
        return Err(match state.store.get_code(email.as_str()).await? {
            Some(r) if r.expires_at > t => ApiError::too_many(
                r.next_try - t,
                format!(
                    "too many wrong codes for {email}: the code still works, but try again in {} s",
                    r.next_try - t
                ),
            ),
            Some(_) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "code_expired",
                format!("the code expired; {again}"),
            ),
            None => invalid(format!("no code is pending for {email}; {again}")),
        });
    };
    if !ct_eq(code_of(state, email, &rec.seed).as_bytes(), code.trim().as_bytes()) {
        let left = FREE_ATTEMPTS - rec.attempts;
        return Err(invalid(if left > 0 {
            format!("wrong code: {} before a wait; check the latest mail", tries_left(left))
        } else {
            format!(
                "wrong code; the next try is possible in {} s; check the latest mail",
                (rec.next_try - t).max(1)
            )
        }));
    }
    // Deleting decides the race between two replicas: only one deletes it.
    if !state.store.delete_code(email.as_str(), &rec.seed).await? {
        return Err(invalid(format!("the code was already used; {again}")));
    }
    Ok(())
}

/// "1 try left", "3 tries left".
fn tries_left(n: i64) -> String {
    if n == 1 {
        "1 try left".into()
    } else {
        format!("{n} tries left")
    }
}

/// `POST /v1/auth/verify`: code in, device registered, tokens out.
#[utoipa::path(
    post, path = "/v1/auth/verify", operation_id = "verify_code", tag = "account", security(()),
    summary = "Exchange the code for tokens and register a device",
    request_body = AuthVerify,
    responses(
        (status = 200, description = "tokens", body = Tokens),
        (status = 401, description = "wrong or expired code", body = ErrorBody),
        (status = 429, description = "too many wrong guesses: wait (Retry-After)", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<AuthVerify>,
) -> ApiResult<axum::Json<Tokens>> {
    state.limit_ip(&addr).await?;
    let email = parse_email(&req.email)?;
    let name = req.device_name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_device_name",
            "the device name must be 1 to 100 printable characters",
        ));
    }
    let der = STANDARD
        .decode(req.device_public_key.trim())
        .ok()
        .filter(|d| DevicePublicKey::from_der(d).is_ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_device_key",
                "device_public_key must be base64 of an RSA-2048 SubjectPublicKeyInfo (DER)",
            )
        })?;
    check_code(&state, &email, &req.code).await?;
    let t = now();
    if state.store.ensure_user(email.as_str(), t).await? {
        tracing::info!(email = %email, "account created");
    }
    let device_id = place_device(
        &state,
        &email,
        req.replace_device.as_deref(),
        name,
        der,
        req.reader_only,
        t,
    )
    .await?;
    let (access, exp) = issue(&state, "access", &email, &device_id, ACCESS_TTL).await?;
    let (refresh, _) = issue(&state, "refresh", &email, &device_id, REFRESH_TTL).await?;
    Metrics::inc(&state.metrics.logins);
    tracing::info!(email = %email, device = %device_id, "signed in");
    Ok(axum::Json(Tokens {
        access_token: access,
        refresh_token: refresh,
        device_id,
        email: email.to_string(),
        access_expires_at: format_time(exp),
    }))
}

/// Registers the signing-in device. A machine that signs in again names
/// the device it was: when that device belongs to the same address it is
/// replaced (its old tokens revoked), so repeated sign-ins leave no ghost
/// devices behind. With the same key it keeps its id and creation time,
/// so licences cached on the machine stay valid; a new key gets a new id,
/// because replicas cache a device's key by id. Any other id is ignored.
async fn place_device(
    state: &AppState,
    email: &Email,
    replace: Option<&str>,
    name: &str,
    public_key: Vec<u8>,
    reader: bool,
    t: i64,
) -> ApiResult<String> {
    let mut device = DeviceRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        email: email.to_string(),
        name: name.to_string(),
        public_key,
        created_at: t,
        last_seen: t,
        reader,
    };
    if let Some(id) = replace
        && let Some(old) = state.store.get_device(id).await?
        && old.email == email.as_str()
        && state.store.delete_device(email.as_str(), id, None).await?
    {
        if old.public_key == device.public_key {
            device.id = old.id;
            device.created_at = old.created_at;
        }
        tracing::info!(email = %email, old = %id, device = %device.id, "device signed in again: replaced");
    }
    state.store.add_device(&device).await?;
    Ok(device.id)
}

/// `POST /v1/auth/refresh`: a new access token and a new refresh token;
/// the one sent is spent. A spent one sent again means two parties hold it
/// (one of them stole it), so the whole session ends for both.
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "account", security(()),
    summary = "A new access token and a new refresh token; the one sent is spent",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "new tokens", body = Refreshed),
        (status = 401, description = "unknown, spent or revoked token, or the device was removed", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<axum::Json<Refreshed>> {
    state.limit_ip(&addr).await?;
    let hash = sha256(req.refresh_token.trim().as_bytes());
    let expired = || ApiError::unauthorized("the session is expired or was logged out; sign in again");
    let Some(rec) = state.store.spend_refresh(&hash, now()).await? else {
        if let Some(spent) = state.store.get_token(&hash, "spent").await? {
            state.store.revoke_session(&hash).await?;
            tracing::warn!(email = %spent.email, device = %spent.device_id,
                "a spent refresh token was used again: session revoked");
            return Err(ApiError::unauthorized(
                "this refresh token was already used, so it may have been copied: the session is ended; sign in again",
            ));
        }
        if let Some(id) = &req.device_id
            && state.store.get_device(id).await?.is_none()
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "device_removed",
                "this device was removed from its account; sign in again",
            ));
        }
        return Err(expired());
    };
    let email = Email::parse(&rec.email).map_err(ApiError::internal)?;
    let (access, exp) = issue(&state, "access", &email, &rec.device_id, ACCESS_TTL).await?;
    let (refresh, _) = issue(&state, "refresh", &email, &rec.device_id, REFRESH_TTL).await?;
    Ok(axum::Json(Refreshed {
        access_token: access,
        refresh_token: refresh,
        access_expires_at: format_time(exp),
    }))
}

/// `POST /v1/auth/logout`: ends the session: the refresh token and every
/// access token of its device stop working at once. The refresh token
/// itself is the proof, so a client whose access token lapsed can still
/// log out.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "account", security(()),
    summary = "End the session of a refresh token and its device's access tokens",
    request_body = RefreshRequest,
    responses((status = 204, description = "ended"))
)]
pub async fn logout(State(state): State<AppState>, ApiJson(req): ApiJson<RefreshRequest>) -> ApiResult<StatusCode> {
    state
        .store
        .revoke_session(&sha256(req.refresh_token.trim().as_bytes()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
