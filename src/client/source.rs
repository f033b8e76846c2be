//! The server as a [`LicenceSource`]: `POST /v1/content/{id}/licence`, and
//! registration for content found unregistered.

use reqwest::Method;

use super::{ClientError, Session};
use crate::api::Empty;
use crate::licence::{FetchError, LicenceSource};
use crate::policy::{ContentId, PublishingLicence, UseLicence};

fn fetch_error(e: ClientError) -> FetchError {
    match e {
        ClientError::Unreachable { reason, .. } => FetchError::Unreachable(reason),
        ClientError::NotLoggedIn | ClientError::SessionExpired(_) | ClientError::DeviceRemoved(_) => {
            FetchError::NotLoggedIn
        }
        ClientError::Server { status, code, message } => match (status, code.as_str()) {
            (410, _) | (_, "revoked") => FetchError::Revoked,
            (404, _) => FetchError::NotRegistered,
            (401, _) => FetchError::NotLoggedIn,
            (403, "access_expired") => FetchError::AccessEnded(message),
            (403, _) => FetchError::Denied,
            _ => FetchError::Other(message),
        },
        other => FetchError::Other(other.to_string()),
    }
}

impl LicenceSource for Session {
    fn register(&self, licence: &PublishingLicence) -> Result<(), FetchError> {
        match Session::register(self, licence) {
            Ok(_) => Ok(()),
            Err(ClientError::Server { status: 409, .. }) => Err(FetchError::Other(
                "someone else registered this file's content id with the server first: it is not registered as yours"
                    .into(),
            )),
            Err(e) => Err(fetch_error(e)),
        }
    }

    fn fetch(&self, content: &ContentId) -> Result<UseLicence, FetchError> {
        let path = format!("/v1/content/{}/licence", content.to_hex());
        self.call(Method::POST, &path, Some(&Empty {})).map_err(fetch_error)
    }
}
