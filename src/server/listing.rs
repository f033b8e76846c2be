//! `GET /v1/content`: the caller's own content, or what others shared
//! with them, a page at a time. Shared content is read from the grants
//! table by the caller's address and domain, so a listing costs the
//! caller's rows, not the registry's size.

use axum::extract::{Query, State};

use super::auth::Caller;
use super::content::{info, policy_of};
use super::cursor;
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::api::{ContentPage, ErrorBody, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, ListQuery};
use crate::policy::now;
use crate::store::PageKey;

/// `GET /v1/content?role=owned|shared&cursor=...&limit=...`.
#[utoipa::path(
    get, path = "/v1/content", operation_id = "list_content", tag = "content",
    summary = "Content owned by or shared with the caller, newest first, a page at a time",
    params(
        ("role" = Option<String>, Query, description = "`owned` (default) or `shared`: live content of others that a grant to the caller's address or `*@domain` gives rights on now"),
        ("cursor" = Option<String>, Query, description = "the `next` of the previous page, for the same role and account"),
        ("limit" = Option<u32>, Query, description = "items per page, 1 to 1000 (default 200)"),
    ),
    responses(
        (status = 200, description = "one page", body = ContentPage),
        (status = 400, description = "unknown role, limit out of range, or a cursor this account's listing did not give", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<ContentPage>> {
    let Query(q) = q.map_err(|e| {
        ApiError::bad_request(
            "bad_query",
            format!(
                "{}; use ?role=owned or ?role=shared, with cursor= and limit= to page",
                e.body_text()
            ),
        )
    })?;
    let role = q.role.as_deref().unwrap_or("owned");
    if role != "owned" && role != "shared" {
        return Err(ApiError::bad_request(
            "bad_role",
            format!("role '{role}' is unknown; use role=owned or role=shared"),
        ));
    }
    let limit = q.limit.unwrap_or(LIST_LIMIT_DEFAULT);
    if !(1..=LIST_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad_limit",
            format!("limit must be from 1 to {LIST_LIMIT_MAX}"),
        ));
    }
    let secret = state.keys.code_secret.as_ref();
    let me = caller.email.as_str();
    let after = q
        .cursor
        .as_deref()
        .map(|c| cursor::open(secret, me, role, c))
        .transpose()?;
    // One more than a page: whether another page follows.
    let want = i64::from(limit) + 1;
    let t = now();
    let mut recs = if role == "owned" {
        state.store.list_owned(me, after.as_ref(), want).await?
    } else {
        state.store.list_shared(me, t, after.as_ref(), want).await?
    };
    let next = if recs.len() > limit as usize {
        recs.truncate(limit as usize);
        recs.last().map(|r| cursor::seal(secret, me, role, &PageKey::of(r)))
    } else {
        None
    };
    let mut contents = Vec::with_capacity(recs.len());
    for r in &recs {
        // The policy decides; the grants table only finds candidates.
        if role == "shared" && policy_of(r)?.rights_for(&caller.email, t).is_empty() {
            continue;
        }
        contents.push(info(r, &caller.email)?);
    }
    Ok(axum::Json(ContentPage { contents, next }))
}
