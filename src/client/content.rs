//! The content registry's routes as typed [`Session`] methods, so that
//! callers name an operation instead of building a method and a path.

use reqwest::Method;

use super::{ClientError, Session};
use crate::api::{
    AuditEntry, BatchOutcome, ContentInfo, ContentPage, Empty, ItemOutcome, LIST_LIMIT_MAX, PutGrants,
    REGISTER_BATCH_MAX, RegisterContent, RegisterContentBatch, SendFile, SentOutcome,
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

    /// `GET /v1/content?role=...`: every content owned (`shared = false`)
    /// or shared with the caller, newest first, following the server's
    /// cursors page by page; `progress` hears the running count after
    /// each page.
    pub fn list_content(&self, shared: bool, mut progress: impl FnMut(usize)) -> Result<Vec<ContentInfo>, ClientError> {
        let role = if shared { "shared" } else { "owned" };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/content?role={role}&limit={LIST_LIMIT_MAX}");
            if let Some(c) = &cursor {
                // Cursors are base64url: nothing in them needs escaping.
                path.push_str("&cursor=");
                path.push_str(c);
            }
            let page: ContentPage = self.get(&path)?;
            all.extend(page.contents);
            progress(all.len());
            match page.next {
                // A server repeating its cursor would keep us here forever.
                Some(c) if cursor.as_ref() == Some(&c) => {
                    return Err(ClientError::Server {
                        status: 200,
                        code: "bad_cursor".into(),
                        message: "the server gave the same page of the listing twice".into(),
                    });
                }
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// `POST /v1/content/{id}/send`: the server mails the protected file.
    pub fn send_file(&self, id: &ContentId, body: &SendFile) -> Result<SentOutcome, ClientError> {
        self.call(Method::POST, &format!("{}/send", content_path(id)), Some(body))
    }
}
