//! Writer certificates: the server's word that a writer key belongs to a
//! device of an account (device certificates), and that it may save
//! versions of one content for a while (edit certificates, issued beside
//! use licences that include `edit`). Readers check versions against
//! them (docs/FORMAT.md, "Writer records").

use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::json::ApiJson;
use super::state::AppState;
use crate::api::{ErrorBody, WriterCertificate, WriterCertificateRequest};
use crate::crypto::{DevicePublicKey, WRITER_KEY_LEN};
use crate::policy::{ContentId, DeviceCertificate, EditCertificate, Right, Rights, Timestamp, now, writer_key_proof};

/// `POST /v1/devices/writer-certificate`: certifies the calling device's
/// writer key once the device proves, with a signature by its registered
/// RSA key (checked with a public operation), that the key is its own.
/// Reader-only devices (browsers) save nothing and get none. The
/// certificate is short-lived and devices ask again to renew it; a device
/// removed from its account is refused, so that once its last
/// certificate ends it signs nothing readers accept.
#[utoipa::path(
    post, path = "/v1/devices/writer-certificate", operation_id = "writer_certificate", tag = "account",
    summary = "Certify the calling device's writer key (not for reader-only devices)",
    request_body = WriterCertificateRequest,
    responses(
        (status = 200, description = "device certificate", body = WriterCertificate),
        (status = 401, description = "not signed in (a removed device's tokens end with it)", body = ErrorBody),
        (status = 403, description = "a removed or reader-only device, or the proof is not the device's signature", body = ErrorBody),
    )
)]
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<WriterCertificateRequest>,
) -> ApiResult<axum::Json<WriterCertificate>> {
    let key: [u8; WRITER_KEY_LEN] = hex::decode(req.writer_key.trim())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("bad_writer_key", "writer_key must be 32 bytes in hex"))?;
    let proof = STANDARD
        .decode(req.proof.trim())
        .map_err(|_| ApiError::bad_request("bad_proof", "proof must be base64"))?;
    let device = state
        .store
        .get_device(&caller.device_id)
        .await?
        .filter(|d| d.email == caller.email.as_str())
        .ok_or_else(|| {
            ApiError::forbidden(
                "device_removed",
                "this device was removed from its account and is certified no more; sign in again",
            )
        })?;
    if device.reader {
        return Err(ApiError::forbidden(
            "reader_device",
            "a reader-only device (a browser) does not save versions and gets no writer certificate",
        ));
    }
    let device_key = DevicePublicKey::from_der(&device.public_key).map_err(ApiError::internal)?;
    device_key
        .verify(&writer_key_proof(&caller.device_id, &key), &proof)
        .map_err(|_| {
            ApiError::forbidden(
                "bad_proof",
                "the proof is not this device's signature over the writer key; sign it with the device key",
            )
        })?;
    let t = now();
    let cert = DeviceCertificate {
        account: caller.email.clone(),
        device_id: caller.device_id.clone(),
        key,
        issued_at: t,
        not_after: t.saturating_add(state.device_certificate_lifetime),
    };
    Ok(axum::Json(WriterCertificate {
        certificate: STANDARD.encode(cert.sign(&state.keys.signing)),
    }))
}

/// The edit certificate to send beside a use licence granting `rights`
/// until `not_after`: only when the rights include `edit`, the caller is
/// not the owner (whose versions need none) and the caller showed a
/// device certificate of this server for their own device.
pub fn for_licence(
    state: &AppState,
    caller: &Caller,
    content_id: ContentId,
    rights: Rights,
    is_owner: bool,
    not_after: Timestamp,
    device_certificate: Option<&str>,
) -> ApiResult<Option<Vec<u8>>> {
    let Some(encoded) = device_certificate else {
        return Ok(None);
    };
    let bad = |why: &str| ApiError::bad_request("bad_device_certificate", format!("{why}; ask for a new one"));
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad("device_certificate must be base64"))?;
    let dc = DeviceCertificate::verify(&bytes, &state.keys.signing.verifying_key())
        .map_err(|_| bad("the device certificate is not signed by this server"))?;
    if dc.account != caller.email || dc.device_id != caller.device_id {
        return Err(bad("the device certificate is for another account or device"));
    }
    if is_owner || !rights.has(Right::Edit) {
        return Ok(None);
    }
    let ec = EditCertificate {
        content_id,
        account: dc.account,
        key: dc.key,
        rights,
        issued_at: now(),
        not_after,
    };
    Ok(Some(ec.sign(&state.keys.signing)))
}
