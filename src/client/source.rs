//! The server as a [`LicenceSource`]: `POST /v1/content/{id}/licence`,
//! registration for content found unregistered, and reports of opens that
//! cached licences served (`POST /v1/opens`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;

use super::{ClientError, Session};
use crate::api::{
    LicenceRequest, OpensRecorded, RemovedDevicesPage, ReportOpens, ReportedOpen, WriterCertificate,
    WriterCertificateRequest,
};
use crate::crypto::WRITER_KEY_LEN;
use crate::licence::{FetchError, LicenceSource, OfflineOpen};
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

    fn report_opens(&self, opens: &[OfflineOpen]) -> Result<(), FetchError> {
        let body = ReportOpens {
            opens: opens
                .iter()
                .map(|o| ReportedOpen {
                    kind: o.kind.clone(),
                    generation: o.generation,
                    content_id: o.content_id.clone(),
                    at: o.at,
                    opened: o.opened,
                    rights: o.rights.clone(),
                    reason: o.reason.clone(),
                })
                .collect(),
        };
        self.call::<_, OpensRecorded>(Method::POST, "/v1/opens", Some(&body))
            .map(drop)
            .map_err(fetch_error)
    }

    fn fetch(&self, content: &ContentId, device_certificate: Option<&[u8]>) -> Result<UseLicence, FetchError> {
        let path = format!("/v1/content/{}/licence", content.to_hex());
        let body = LicenceRequest {
            device_certificate: device_certificate.map(|c| STANDARD.encode(c)),
        };
        self.call(Method::POST, &path, Some(&body)).map_err(fetch_error)
    }

    fn removed_devices(&self, after: Option<&str>) -> Result<Vec<u8>, FetchError> {
        let mut path = "/v1/devices/removed".to_string();
        if let Some(after) = after {
            path.push_str("?after=");
            path.push_str(&url_escape(after));
        }
        let page: RemovedDevicesPage = self.call::<(), _>(Method::GET, &path, None).map_err(fetch_error)?;
        STANDARD
            .decode(page.list)
            .map_err(|_| FetchError::Other("the server sent a removed devices list that is not base64".into()))
    }

    fn device_certificate(&self, writer_key: &[u8; WRITER_KEY_LEN], proof: &[u8]) -> Result<Vec<u8>, FetchError> {
        let request = WriterCertificateRequest {
            writer_key: hex::encode(writer_key),
            proof: STANDARD.encode(proof),
        };
        let answer: WriterCertificate = self
            .call(Method::POST, "/v1/devices/writer-certificate", Some(&request))
            .map_err(fetch_error)?;
        STANDARD
            .decode(answer.certificate)
            .map_err(|_| FetchError::Other("the server sent a device certificate that is not base64".into()))
    }
}

/// `s` safe in a query string: anything but unreserved characters
/// percent-encoded (device ids are hex, but the server decides them).
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
