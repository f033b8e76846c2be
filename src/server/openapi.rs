//! The OpenAPI document, derived from the wire types (`crate::api`) and the
//! handlers' `utoipa::path` attributes. It is served at
//! `GET /v1/openapi.json`, printed by `rights-server openapi`, and kept in
//! `docs/openapi.json`; tests check that the copy is current and that it
//! names exactly the routes the router serves.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{account, app, audit, auth, certificates, content, licence, listing, send, viewer};
use crate::api::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rights-server",
        description = "The licensing server of rightsfs: sign-in by mailed code, devices, the content registry, \
            use licences, sharing, revocation and audit. Request bodies are JSON (at most 256 KiB unless said \
            otherwise) and refuse unknown fields. Every error answers `{\"error\": {\"code\", \"message\"}}` \
            (`ErrorBody`); besides those listed per operation, any operation may answer 400 (malformed \
            request), 401 (no or expired access token), 413, 415 and 422 (body refused), 429 (wait for \
            Retry-After) and 503 (database unavailable)."
    ),
    paths(
        app::healthz,
        app::metrics,
        app::serve_openapi,
        app::server_key,
        auth::start,
        auth::verify,
        auth::refresh,
        auth::logout,
        account::me,
        account::devices,
        certificates::issue,
        account::removed_devices,
        account::delete_device,
        content::register,
        listing::list,
        content::register_batch,
        audit::report,
        content::get,
        licence::issue,
        content::put_grants,
        content::delete_grant,
        content::revoke,
        content::audit,
        send::send,
        send::file,
        viewer::root,
        viewer::index,
        viewer::file,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions),
    security(("bearer" = []))
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme, and the error shape as
/// the default answer.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "an access token from /v1/auth/verify or /v1/auth/refresh (valid 15 minutes)",
                    ))
                    .build(),
            ),
        );
        let error = ResponseBuilder::new()
            .description("an error: what went wrong and what to do next")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                op.responses
                    .responses
                    .entry("default".into())
                    .or_insert(error.clone().into());
            }
        }
    }
}

/// The document as served and checked in: pretty JSON, ending in a newline.
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("an OpenAPI document always serialises");
    json.push('\n');
    json
}
