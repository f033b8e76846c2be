//! The content registry's routes as typed [`Session`] methods, so that
//! callers name an operation instead of building a method and a path.

use reqwest::Method;
use serde_json::Value;

use super::{BatchItem, BatchResults, ClientError, Session};
use crate::policy::{ContentId, Grant, Principal, PublishingLicence};

/// Most licences the server takes in one batch.
pub const REGISTER_BATCH_MAX: usize = 100;

fn content_path(id: &ContentId) -> String {
    format!("/v1/content/{}", id.to_hex())
}

impl Session {
    /// `POST /v1/content`: registers one publishing licence.
    pub fn register(&self, licence: &PublishingLicence) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "publishing_licence": licence });
        self.call(Method::POST, "/v1/content", Some(&body))
    }

    /// Registers up to [`REGISTER_BATCH_MAX`] licences in one request; the
    /// outcome of each, in order.
    pub fn register_batch(&self, licences: &[PublishingLicence]) -> Result<Vec<BatchItem>, ClientError> {
        let body = serde_json::json!({ "publishing_licences": licences });
        let r: BatchResults = self.call(Method::POST, "/v1/content/batch", Some(&body))?;
        if r.results.len() != licences.len() {
            return Err(ClientError::Server {
                status: 502,
                code: "bad_batch_answer".into(),
                message: format!(
                    "the server answered {} of {} registrations",
                    r.results.len(),
                    licences.len()
                ),
            });
        }
        Ok(r.results)
    }

    /// `GET /v1/content/{id}`: what the server registered.
    pub fn content(&self, id: &ContentId) -> Result<Value, ClientError> {
        self.get(&content_path(id))
    }

    /// `PUT /v1/content/{id}/grants`: adds or replaces grants.
    /// `file_name` only goes into the invitation mails.
    pub fn put_grants(&self, id: &ContentId, grants: &[Grant], file_name: Option<&str>) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "grants": grants, "file_name": file_name });
        self.call(Method::PUT, &format!("{}/grants", content_path(id)), Some(&body))
    }

    /// `DELETE /v1/content/{id}/grants/{principal}`.
    pub fn delete_grant(&self, id: &ContentId, who: &Principal) -> Result<Value, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("{}/grants/{who}", content_path(id)), None)
    }

    /// `POST /v1/content/{id}/revoke`.
    pub fn revoke(&self, id: &ContentId) -> Result<Value, ClientError> {
        let body = serde_json::json!({});
        self.call(Method::POST, &format!("{}/revoke", content_path(id)), Some(&body))
    }

    /// `GET /v1/content/{id}/audit`: the owner's access log.
    pub fn audit(&self, id: &ContentId) -> Result<Value, ClientError> {
        self.get(&format!("{}/audit", content_path(id)))
    }

    /// `GET /v1/content?role=...`: content owned (`shared = false`) or
    /// shared with the caller.
    pub fn list_content(&self, shared: bool) -> Result<Value, ClientError> {
        let role = if shared { "shared" } else { "owned" };
        self.get(&format!("/v1/content?role={role}"))
    }
}
