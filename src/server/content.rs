//! The content registry: registration of publishing licences, sharing,
//! revocation and the owner's audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::mail::{Invitation, invitation_mail};
use super::state::AppState;
use crate::api::{
    AuditEntry, BatchOutcome, ContentInfo, Empty, ErrorBody, ItemOutcome, PutGrants, REGISTER_BATCH_MAX,
    RegisterContent, RegisterContentBatch,
};
use crate::policy::{ContentId, Email, Grant, Policy, Principal, PublishingLicence, Right, Rights, format_time, now};
use crate::store::{ContentRecord, InsertOutcome};

/// Parses the `{id}` path segment.
pub fn parse_id(s: &str) -> ApiResult<ContentId> {
    ContentId::from_hex(s)
        .map_err(|_| ApiError::bad_request("bad_content_id", format!("'{s}' is not a content id (32 hex digits)")))
}

/// The stored policy of a record.
pub fn policy_of(rec: &ContentRecord) -> ApiResult<Policy> {
    serde_json::from_str(&rec.policy).map_err(ApiError::internal)
}

/// What `caller` is told of a record. Who else a file is shared with is
/// the owner's business: holders of the `owner` right see every grant,
/// anyone else only the grants that name them (their address or their
/// domain), as their use licences already tell them.
pub(super) fn info(rec: &ContentRecord, caller: &Email) -> ApiResult<ContentInfo> {
    let pl: PublishingLicence = serde_json::from_str(&rec.pl).map_err(ApiError::internal)?;
    let mut policy = policy_of(rec)?;
    if !policy.rights_for(caller, now()).has(Right::Owner) {
        policy.grants.retain(|g| g.to.matches(caller));
    }
    Ok(ContentInfo {
        content_id: rec.id.clone(),
        owner: rec.owner.clone(),
        licence_hash: hex::encode(pl.hash()),
        policy,
        revoked: rec.revoked,
        created_at: format_time(rec.created_at),
        registered_at: format_time(rec.registered_at),
    })
}

/// Loads registered content or answers 404.
pub async fn load(state: &AppState, id: &ContentId) -> ApiResult<ContentRecord> {
    state.store.get_content(&id.to_hex()).await?.ok_or_else(|| {
        ApiError::not_found(
            "not_registered",
            format!("content {id} is not registered here; its owner must register it (rights sync)"),
        )
    })
}

/// `POST /v1/content`: registers a publishing licence after checking that it
/// is intact, the caller's own, made on one of the caller's devices, for this
/// server, and that its content key unwraps.
#[utoipa::path(
    post, path = "/v1/content", tag = "content",
    summary = "Register a publishing licence (its owner, from one of the owner's devices, for this server's key)",
    request_body = RegisterContent,
    responses(
        (status = 201, description = "registered", body = ContentInfo),
        (status = 200, description = "already registered with this licence", body = ContentInfo),
        (status = 403, description = "not the caller's licence, device or key", body = ErrorBody),
        (status = 409, description = "someone else registered this content id", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterContent>,
) -> ApiResult<(StatusCode, axum::Json<ContentInfo>)> {
    let devices = state.store.list_devices(caller.email.as_str()).await?;
    let checked = check(&state, &caller, &devices, &req.publishing_licence)?;
    let outcome = state.store.insert_content(&checked.rec).await?;
    let (status, info) = settle(&state, &caller.email, checked, outcome)?;
    tracing::info!(content = %info.content_id, owner = %info.owner, status = status.as_u16(), "content registration");
    Ok((status, axum::Json(info)))
}

/// `POST /v1/content/batch`: registers up to [`REGISTER_BATCH_MAX`] licences in one
/// request, each checked as `POST /v1/content` checks it; the answer gives
/// each one's outcome in order. A mount creating many files sends them this
/// way, so that a burst of new files costs one round trip per hundred.
#[utoipa::path(
    post, path = "/v1/content/batch", tag = "content",
    summary = "Register up to 100 publishing licences at once, each checked as POST /v1/content checks it",
    request_body = RegisterContentBatch,
    responses((status = 200, description = "each licence's outcome, in order", body = BatchOutcome))
)]
pub async fn register_batch(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterContentBatch>,
) -> ApiResult<axum::Json<BatchOutcome>> {
    if req.publishing_licences.is_empty() || req.publishing_licences.len() > REGISTER_BATCH_MAX {
        return Err(ApiError::bad_request(
            "bad_batch",
            format!("send from 1 to {REGISTER_BATCH_MAX} publishing licences per batch"),
        ));
    }
    let devices = state.store.list_devices(caller.email.as_str()).await?;
    // Every licence is checked first; those that pass are stored in one
    // transaction (one commit per batch instead of one per file).
    let mut results: Vec<Option<ItemOutcome>> = Vec::with_capacity(req.publishing_licences.len());
    let mut good = Vec::new();
    for pl in &req.publishing_licences {
        match check(&state, &caller, &devices, pl) {
            Ok(c) => {
                results.push(None);
                good.push((results.len() - 1, c));
            }
            Err(e) => {
                let id = pl.decode_unverified().ok().map(|b| b.content_id.to_hex());
                results.push(Some(failed(id, e)));
            }
        }
    }
    let records: Vec<ContentRecord> = good.iter().map(|(_, c)| c.rec.clone()).collect();
    let outcomes = if records.is_empty() {
        Vec::new()
    } else {
        state.store.insert_contents(records).await?
    };
    for ((i, checked), outcome) in good.into_iter().zip(outcomes) {
        let id = checked.rec.id.clone();
        results[i] = Some(match settle(&state, &caller.email, checked, outcome) {
            Ok((status, info)) => ItemOutcome {
                content_id: Some(info.content_id),
                status: status.as_u16(),
                error: None,
                message: None,
            },
            Err(e) => failed(Some(id), e),
        });
    }
    let results: Vec<ItemOutcome> = results
        .into_iter()
        .map(|r| r.expect("every item has an outcome"))
        .collect();
    let created = results.iter().filter(|r| r.status == 201).count();
    tracing::info!(owner = %caller.email, items = results.len(), created, "content registration batch");
    Ok(axum::Json(BatchOutcome { results }))
}

/// An item's outcome when it was refused.
fn failed(content_id: Option<String>, e: ApiError) -> ItemOutcome {
    ItemOutcome {
        content_id,
        status: e.status.as_u16(),
        error: Some(e.code.to_string()),
        message: Some(e.message),
    }
}

/// A publishing licence that passed every check, ready to store.
struct Checked {
    rec: ContentRecord,
    content_id: [u8; 16],
    cek: crate::crypto::ContentKey,
}

/// Checks a publishing licence: intact, the caller's own, made on one of
/// the caller's devices, for this server, and its content key unwraps.
fn check(
    state: &AppState,
    caller: &Caller,
    devices: &[crate::store::DeviceRecord],
    pl: &crate::policy::PublishingLicence,
) -> ApiResult<Checked> {
    let body = pl
        .verify_with(Some(&state.certs))
        .map_err(|e| ApiError::bad_request("bad_licence", format!("the publishing licence is refused: {e}")))?;
    if body.owner() != &caller.email {
        return Err(ApiError::forbidden(
            "not_owner",
            format!(
                "this licence belongs to {}; only its owner can register it",
                body.owner()
            ),
        ));
    }
    // A reader-only device never vouches for a policy: its key is meant
    // for decryption alone, and the page holding it only reads.
    if !devices
        .iter()
        .any(|d| d.public_key == body.owner_device_key && !d.reader)
    {
        return Err(ApiError::forbidden(
            "unknown_device",
            "the licence was signed by a device that is not one of yours (or one that only reads); sign in with the rights app on that device and register from it",
        ));
    }
    if body.server_key != state.keys.kem.public().0 {
        return Err(ApiError::bad_request(
            "wrong_server",
            "the file was protected for another server's key; register it with that server",
        ));
    }
    let wrapped = body
        .wrapped()
        .map_err(|e| ApiError::bad_request("bad_licence", format!("the publishing licence is refused: {e}")))?;
    // The wrap is bound to the owner and device the licence names: a key
    // taken from another owner's file fails here.
    let cek = state.keys.kem.unwrap(&wrapped, &body.key_context()).map_err(|_| {
        ApiError::forbidden(
            "key_not_owned",
            "the content key in the licence was not wrapped by this owner's device for this content \
             (it was taken from another owner's file, or damaged); only the file's owner can register it",
        )
    })?;
    // Sealed grants (version 3) are what the server registers: they open
    // only under this content id, owner and device, so grants altered or
    // moved from another file are refused here, and the owner's signature
    // over them binds them to the licence hash readers check.
    let policy = pl.policy_for_server(&state.keys.kem).map_err(|e| {
        ApiError::forbidden(
            "grants_not_sealed",
            format!(
                "the licence's sealed grants do not open for this content, owner and device \
                 (altered, or taken from another file): {e}"
            ),
        )
    })?;
    let rec = ContentRecord {
        id: body.content_id.to_hex(),
        owner: caller.email.to_string(),
        pl: serde_json::to_string(pl).map_err(ApiError::internal)?,
        policy: serde_json::to_string(&policy).map_err(ApiError::internal)?,
        revoked: false,
        created_at: body.created_at,
        registered_at: now(),
    };
    Ok(Checked {
        rec,
        content_id: body.content_id.0,
        cek,
    })
}

/// The answer for a checked licence, given what the store made of it.
fn settle(
    state: &AppState,
    caller: &Email,
    checked: Checked,
    outcome: InsertOutcome,
) -> ApiResult<(StatusCode, ContentInfo)> {
    let Checked { rec, content_id, cek } = checked;
    match outcome {
        InsertOutcome::Created => {
            state
                .ceks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .put(content_id, cek);
            tracing::debug!(content = %rec.id, owner = %rec.owner, "content registered");
            Ok((StatusCode::CREATED, info(&rec, caller)?))
        }
        InsertOutcome::Exists(old) if old.pl == rec.pl => Ok((StatusCode::OK, info(&old, caller)?)),
        InsertOutcome::Exists(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("content {} is already registered with a different licence", rec.id),
        )),
    }
}

fn no_rights(owner: &str) -> ApiError {
    ApiError::forbidden(
        "no_rights",
        format!("you have no rights on this file; ask its owner {owner} to share it with you"),
    )
}

/// `GET /v1/content/{id}`: for the owner and anyone holding rights.
#[utoipa::path(
    get, path = "/v1/content/{id}", operation_id = "get_content", tag = "content",
    summary = "One content (its owner or holders of rights)",
    params(("id" = String, Path, description = "content id (32 hex digits)")),
    responses(
        (status = 200, description = "content", body = ContentInfo),
        (status = 403, description = "the caller holds no rights", body = ErrorBody),
        (status = 404, description = "not registered", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ContentInfo>> {
    let rec = load(&state, &parse_id(&id)?).await?;
    if policy_of(&rec)?.rights_for(&caller.email, now()).is_empty() {
        return Err(no_rights(&rec.owner));
    }
    Ok(axum::Json(info(&rec, &caller.email)?))
}

/// Loads content the caller may share (owner, or holder of `share`).
pub(super) async fn load_for_sharing(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(ContentRecord, bool)> {
    let rec = load(state, &parse_id(id)?).await?;
    let rights = policy_of(&rec)?.rights_for(&caller.email, now());
    let is_owner = rights.has(Right::Owner);
    if !is_owner && !rights.has(Right::Share) {
        return Err(ApiError::forbidden(
            "no_share_right",
            format!(
                "only the owner {} or people holding the share right can change sharing",
                rec.owner
            ),
        ));
    }
    if rec.revoked {
        return Err(ApiError::new(
            StatusCode::GONE,
            "revoked",
            "this file was revoked by its owner; it cannot be shared",
        ));
    }
    Ok((rec, is_owner))
}

/// Applies `change` to the stored policy, retrying if another request changed it meanwhile.
pub(super) async fn update_policy(
    state: &AppState,
    id: &str,
    mut change: impl FnMut(&mut Policy) -> ApiResult<()>,
) -> ApiResult<ContentRecord> {
    for _ in 0..8 {
        let mut rec = state
            .store
            .get_content(id)
            .await?
            .ok_or_else(|| ApiError::not_found("not_registered", "the content is no longer registered"))?;
        let mut policy = policy_of(&rec)?;
        change(&mut policy)?;
        policy
            .validate()
            .map_err(|e| ApiError::bad_request("bad_grant", format!("{e}")))?;
        let new = serde_json::to_string(&policy).map_err(ApiError::internal)?;
        if state.store.update_policy(id, &rec.policy, &new).await? {
            rec.policy = new;
            return Ok(rec);
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "busy",
        "the sharing of this file is being changed by others right now; retry",
    ))
}

/// `PUT /v1/content/{id}/grants`: adds or replaces grants and mails each
/// named person not yet invited to this content, within the mail limits.
#[utoipa::path(
    put, path = "/v1/content/{id}/grants", tag = "content",
    summary = "Add or replace grants (owner or holders of share); mails each named person",
    params(("id" = String, Path, description = "content id (32 hex digits)")),
    request_body = PutGrants,
    responses(
        (status = 200, description = "content", body = ContentInfo),
        (status = 403, description = "neither owner nor holder of share", body = ErrorBody),
        (status = 410, description = "revoked", body = ErrorBody),
    )
)]
pub async fn put_grants(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PutGrants>,
) -> ApiResult<axum::Json<ContentInfo>> {
    let (rec, is_owner) = load_for_sharing(&state, &caller, &id).await?;
    if req.grants.is_empty() {
        return Err(ApiError::bad_request("bad_grant", "send at least one grant"));
    }
    let policy = policy_of(&rec)?;
    let mine = policy.rights_for(&caller.email, now());
    for g in &req.grants {
        if g.rights.is_empty() {
            return Err(ApiError::bad_request(
                "bad_grant",
                format!("the grant to {} names no rights", g.to),
            ));
        }
        if g.expires.is_some_and(|e| e <= now()) {
            return Err(ApiError::bad_request(
                "bad_grant",
                format!("the grant to {} has already expired", g.to),
            ));
        }
        if let Principal::User(u) = &g.to
            && u.as_str() == rec.owner
        {
            return Err(ApiError::bad_request(
                "bad_grant",
                "the owner already holds every right",
            ));
        }
        if !is_owner {
            share_limits(&policy, &caller.email, mine, g)?;
        }
    }
    // Only after every rule passed: a sharer's grant to someone who holds
    // one already is left out without a word, so that the answer (and the
    // mail nobody gets) is the same as for a new recipient and a sharer
    // cannot probe who else holds a grant.
    let grants: Vec<Grant> = req
        .grants
        .iter()
        .filter(|g| is_owner || !has_grant(&policy, &g.to))
        .cloned()
        .collect();
    let invitees = new_invitees(&state, &caller, &rec.id, &grants).await?;
    let rec = match update_policy(&state, &rec.id, |p| {
        for g in &grants {
            if is_owner || !has_grant(p, &g.to) {
                p.upsert_grant(g.clone());
            }
        }
        Ok(())
    })
    .await
    {
        Ok(rec) => rec,
        Err(e) => {
            forget_invitations(&state, &rec.id, &invitees).await;
            return Err(e);
        }
    };
    // A name that would not read as one line of text is left out.
    let file_name = req
        .file_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.chars().count() <= 255 && !n.chars().any(char::is_control));
    for u in &invitees {
        // The last grant to a person is the one the policy kept.
        let Some(g) = grants.iter().rev().find(|g| g.to == Principal::User(u.clone())) else {
            continue;
        };
        let (subject, body) = invitation_mail(&Invitation {
            owner: caller.email.as_str(),
            file_name,
            rights: &g.rights.to_string(),
            until: g.expires.map(format_time).as_deref(),
            content_id: &rec.id,
            server: &state.public_url,
        });
        if let Err(e) = state.mailer.send(u.as_str(), &subject, body).await {
            tracing::warn!(error = %e, to = %u, "cannot send the invitation mail");
            forget_invitations(&state, &rec.id, std::slice::from_ref(u)).await;
        }
    }
    tracing::info!(content = %rec.id, by = %caller.email, "grants changed");
    Ok(axum::Json(info(&rec, &caller.email)?))
}

/// Whether `to` holds a grant on `policy` (expired ones included).
pub(super) fn has_grant(policy: &Policy, to: &Principal) -> bool {
    policy.grants.iter().any(|x| x.to == *to)
}

/// What a holder of `share` (not the owner) may grant: new grants only (the
/// owner's and everyone else's stay as the owner set them, the sharer's
/// own included), to one address at a time (a domain wildcard could hand
/// access to a whole organisation), rights they hold themselves, ending no
/// later than their own access. Each refusal names its rule. A grant to
/// someone else who holds one already is not refused here (that would
/// tell the sharer who holds grants): callers leave it out after these
/// checks pass. Used for every way a sharer hands out access (grants and
/// mailed files).
pub(super) fn share_limits(policy: &Policy, me: &Email, mine: Rights, g: &Grant) -> ApiResult<()> {
    if matches!(g.to, Principal::Domain(_)) {
        return Err(ApiError::forbidden(
            "share_no_wildcards",
            format!(
                "only the owner {} may grant a whole domain ({}); share with addresses",
                policy.owner, g.to
            ),
        ));
    }
    if g.to == Principal::User(me.clone()) {
        return Err(ApiError::forbidden(
            "share_cannot_change_grants",
            format!("only the owner {} changes your own grant", policy.owner),
        ));
    }
    if g.rights.has(Right::Owner) || g.rights.union(mine) != mine {
        return Err(ApiError::forbidden(
            "no_share_right",
            format!("you can only pass on rights you hold yourself ({mine})"),
        ));
    }
    if let Some(end) = policy.access_ends(me, now())
        && g.expires.is_none_or(|e| e > end)
    {
        return Err(ApiError::forbidden(
            "share_beyond_own_expiry",
            format!(
                "your own access ends {}; a grant you give must end by then",
                format_time(end)
            ),
        ));
    }
    Ok(())
}

/// The people named in `grants` who were never invited to this content,
/// recorded as invited now, with one mail each reserved within the mail
/// limits. Each person is mailed once per content, so repeating a share
/// mails nobody again; over a limit, nothing is recorded and the answer is
/// 429.
async fn new_invitees(state: &AppState, caller: &Caller, id: &str, grants: &[Grant]) -> ApiResult<Vec<Email>> {
    let t = now();
    let mut fresh = Vec::new();
    for g in grants {
        if let Principal::User(u) = &g.to
            && !fresh.contains(u)
        {
            match state.store.add_invitation(id, u.as_str(), t).await {
                Ok(true) => fresh.push(u.clone()),
                Ok(false) => {}
                Err(e) => {
                    forget_invitations(state, id, &fresh).await;
                    return Err(e.into());
                }
            }
        }
    }
    let to: Vec<&str> = fresh.iter().map(Email::as_str).collect();
    if let Err(e) = state
        .mail_limits
        .reserve(state.store.as_ref(), caller.email.as_str(), &to)
        .await
    {
        forget_invitations(state, id, &fresh).await;
        return Err(e);
    }
    Ok(fresh)
}

/// Undoes invitations that were not mailed, so that a later share mails them.
async fn forget_invitations(state: &AppState, id: &str, who: &[Email]) {
    for u in who {
        if let Err(e) = state.store.remove_invitation(id, u.as_str()).await {
            tracing::warn!(error = %e, to = %u, "cannot forget an unsent invitation");
        }
    }
}

/// `DELETE /v1/content/{id}/grants/{principal}`.
#[utoipa::path(
    delete, path = "/v1/content/{id}/grants/{principal}", tag = "content",
    summary = "Remove the grant to an address or *@domain",
    params(("id" = String, Path, description = "content id (32 hex digits)"), ("principal" = String, Path, description = "an address or `*@domain`")),
    responses(
        (status = 200, description = "content", body = ContentInfo),
        (status = 404, description = "no such grant", body = ErrorBody),
    )
)]
pub async fn delete_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, who)): Path<(String, String)>,
) -> ApiResult<axum::Json<ContentInfo>> {
    let to = Principal::parse(&who).map_err(|e| ApiError::bad_request("bad_email", e.to_string()))?;
    let (rec, is_owner) = load_for_sharing(&state, &caller, &id).await?;
    // Anyone may give up their own grant; only the owner takes others'.
    if !is_owner && to != Principal::User(caller.email.clone()) {
        return Err(ApiError::forbidden(
            "owner_only_removes_grants",
            format!(
                "only the owner {} removes other people's grants; you may remove only your own",
                rec.owner
            ),
        ));
    }
    let rec = update_policy(&state, &rec.id, |p| {
        if p.remove_grant(&to) {
            Ok(())
        } else {
            Err(ApiError::not_found(
                "no_grant",
                format!("{to} has no grant on this file"),
            ))
        }
    })
    .await?;
    Ok(axum::Json(info(&rec, &caller.email)?))
}

/// `POST /v1/content/{id}/revoke`: nobody but the owner gets new licences.
#[utoipa::path(
    post, path = "/v1/content/{id}/revoke", tag = "content",
    summary = "Revoke: only the owner gets new licences (owner only)",
    params(("id" = String, Path, description = "content id (32 hex digits)")),
    request_body = Empty,
    responses(
        (status = 200, description = "content", body = ContentInfo),
        (status = 403, description = "not the owner", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(_): ApiJson<Empty>,
) -> ApiResult<axum::Json<ContentInfo>> {
    let mut rec = load(&state, &parse_id(&id)?).await?;
    if rec.owner != caller.email.as_str() {
        return Err(ApiError::forbidden(
            "not_owner",
            format!("only the owner {} can revoke this file", rec.owner),
        ));
    }
    state.store.revoke(&rec.id).await?;
    state.sent.forget(&rec.id).await;
    rec.revoked = true;
    tracing::info!(content = %rec.id, "revoked");
    Ok(axum::Json(info(&rec, &caller.email)?))
}

/// `GET /v1/content/{id}/audit`: owner only.
#[utoipa::path(
    get, path = "/v1/content/{id}/audit", tag = "content",
    summary = "Licences issued and refused (owner only)",
    params(("id" = String, Path, description = "content id (32 hex digits)")),
    responses(
        (status = 200, description = "audit log, oldest first", body = Vec<AuditEntry>),
        (status = 403, description = "not the owner", body = ErrorBody),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let rec = load(&state, &parse_id(&id)?).await?;
    if rec.owner != caller.email.as_str() {
        return Err(ApiError::forbidden(
            "not_owner",
            format!("only the owner {} can read the audit log", rec.owner),
        ));
    }
    let mut rows = state.store.list_audit(&rec.id).await?;
    // Opens reported late go where they happened.
    rows.sort_by_key(|a| a.time);
    Ok(axum::Json(rows.into_iter().map(super::audit::entry).collect()))
}
