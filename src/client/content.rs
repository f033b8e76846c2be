//! The content registry's routes as typed [`Session`] methods, so that
//! callers name an operation instead of building a method and a path.

use reqwest::Method;

use super::{ClientError, Session};
use crate::api::{
    AuditEntry, BatchOutcome, ContentInfo, Empty, ItemOutcome, PutGrants, REGISTER_BATCH_MAX, RegisterContent,
    RegisterContentBatch, SendFile, SentOutcome,
};
use crate::policy::{ContentId, Grant, Principal, PublishingLicence};

fn content_path(id: &ContentId) -> String {
    format!("/v1/content/{}", id.to_hex())
}

impl Session {
    /// `POST /v1/content`: registers one publishing licence.
    pub fn register(&self, licence: &PublishingLicence) -> Result<ContentInfo, ClientError> {
        let body = RegisterContent {
            publishing_licence: licence.clone(),
        };
        self.call(Method::POST, "/v1/content", Some(&body))
    }

    /// Registers up to [`REGISTER_BATCH_MAX`] licences in one request; the
    /// outcome of each, in order.
    pub fn register_batch(&self, licences: &[PublishingLicence]) -> Result<Vec<ItemOutcome>, ClientError> {
        debug_assert!(licences.len() <= REGISTER_BATCH_MAX);
        let body = RegisterContentBatch {
            publishing_licences: licences.to_vec(),
        };
        let r: BatchOutcome = self.call(Method::POST, "/v1/content/batch", Some(&body))?;
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
    pub fn content(&self, id: &ContentId) -> Result<ContentInfo, ClientError> {
        self.get(&content_path(id))
    }

    /// `PUT /v1/content/{id}/grants`: adds or replaces grants.
    /// `file_name` only goes into the invitation mails.
    pub fn put_grants(
        &self,
        id: &ContentId,
        grants: &[Grant],
        file_name: Option<&str>,
    ) -> Result<ContentInfo, ClientError> {
        let body = PutGrants {
            grants: grants.to_vec(),
            file_name: file_name.map(str::to_string),
        };
        self.call(Method::PUT, &format!("{}/grants", content_path(id)), Some(&body))
    }

    /// `DELETE /v1/content/{id}/grants/{principal}`.
    pub fn delete_grant(&self, id: &ContentId, who: &Principal) -> Result<ContentInfo, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("{}/grants/{who}", content_path(id)), None)
    }

    /// `POST /v1/content/{id}/revoke`.
    pub fn revoke(&self, id: &ContentId) -> Result<ContentInfo, ClientError> {
        self.call(Method::POST, &format!("{}/revoke", content_path(id)), Some(&Empty {}))
    }

    /// `GET /v1/content/{id}/audit`: the owner's access log.
    pub fn audit(&self, id: &ContentId) -> Result<Vec<AuditEntry>, ClientError> {
        self.get(&format!("{}/audit", content_path(id)))
    }

    /// `GET /v1/content?role=...`: content owned (`shared = false`) or
    /// shared with the caller.
    pub fn list_content(&self, shared: bool) -> Result<Vec<ContentInfo>, ClientError> {
        let role = if shared { "shared" } else { "owned" };
        self.get(&format!("/v1/content?role={role}"))
    }

    /// `POST /v1/content/{id}/send`: the server mails the protected file.
    pub fn send_file(&self, id: &ContentId, body: &SendFile) -> Result<SentOutcome, ClientError> {
        self.call(Method::POST, &format!("{}/send", content_path(id)), Some(body))
    }
}
