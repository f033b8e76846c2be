//! OpenAPI schemas of the policy types that travel in the API. They are
//! written here rather than derived in `policy`, which is part of the
//! codec and does not depend on the server's crates; a test checks them
//! against what serde actually writes.

use std::borrow::Cow;

use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::policy::{Grant, Policy, PublishingLicence, Rights, UseLicence};

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn base64(description: &str) -> RefOr<Schema> {
    string(description)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
        .into()
}

fn unix_time(description: &str, nullable: bool) -> RefOr<Schema> {
    let t = if nullable {
        SchemaType::from_iter([Type::Integer, Type::Null])
    } else {
        SchemaType::new(Type::Integer)
    };
    ObjectBuilder::new()
        .schema_type(t)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(description))
        .into()
}

fn rights(description: &str) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Rights::owner().to_names())),
        )
        .description(Some(description))
        .into()
}

/// A signed document: the exact signed bytes and the signature over them.
fn signed(what: &str, body: &str, signature: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .description(Some(what))
        .property("body", base64(body))
        .required("body")
        .property("signature", base64(signature))
        .required("signature")
}

impl PartialSchema for Grant {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("Rights given to an address or to everyone at a domain."))
            .property("to", string("An address, or `*@domain` for everyone at that domain."))
            .required("to")
            .property("rights", rights("What they may do."))
            .required("rights")
            .property(
                "expires",
                unix_time(
                    "When the grant lapses (Unix seconds); null: it lasts as long as the content.",
                    true,
                ),
            )
            .into()
    }
}

impl ToSchema for Grant {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Grant")
    }
}

impl PartialSchema for Policy {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("Who may do what with one content, and for how long offline."))
            .property("owner", string("The owner's address: always holds every right."))
            .required("owner")
            .property(
                "grants",
                ArrayBuilder::new()
                    .items(RefOr::Ref(Ref::from_schema_name(Grant::name())))
                    .description(Some("Everyone else: at most one grant per address or domain.")),
            )
            .property(
                "expires",
                unix_time(
                    "When the content expires for everyone but the owner (Unix seconds).",
                    true,
                ),
            )
            .property(
                "offline_days",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                    .minimum(Some(0))
                    .description(Some(
                        "Days a use licence stays usable offline; 0: the server is asked at every open.",
                    )),
            )
            .required("offline_days")
            .into()
    }
}

impl ToSchema for Policy {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Policy")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Grant::name().into(), Grant::schema()));
    }
}

impl PartialSchema for PublishingLicence {
    fn schema() -> RefOr<Schema> {
        signed(
            "The owner-signed publishing licence from a protected file's header (FORMAT.md).",
            "postcard encoding of the licence body, base64",
            "the owner device's signature over the body, base64",
        )
        .into()
    }
}

impl ToSchema for PublishingLicence {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PublishingLicence")
    }
}

impl PartialSchema for UseLicence {
    fn schema() -> RefOr<Schema> {
        signed(
            "A use licence: the content key wrapped to one device, and that device's rights, signed by the server.",
            "postcard encoding of the licence body, base64",
            "the server's Ed25519 signature over the body, base64",
        )
        .property(
            "edit_certificate",
            base64(
                "with rights that include edit, for a device that showed its device certificate: the \
                 server-signed edit certificate its saved versions carry (FORMAT.md 5.1), base64",
            ),
        )
        .property(
            "access_ends",
            unix_time(
                "When the caller's access ends on its own (their grant's or the content's expiry), \
                 Unix seconds; not signed: it lets a device whose licence lapsed offline say so \
                 (the file's grants are sealed)",
                true,
            ),
        )
        .into()
    }
}

impl ToSchema for UseLicence {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("UseLicence")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Email, Principal};

    /// The property names a schema declares, and those it requires.
    fn properties(s: RefOr<Schema>) -> (Vec<String>, Vec<String>) {
        let RefOr::T(Schema::Object(o)) = s else {
            panic!("not an object schema")
        };
        (o.properties.keys().cloned().collect(), o.required)
    }

    fn keys<T: serde::Serialize>(v: &T) -> Vec<String> {
        let mut k: Vec<String> = serde_json::to_value(v)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    }

    #[test]
    fn the_schemas_name_exactly_the_fields_serde_writes() {
        let owner = Email::parse("alice@example.com").unwrap();
        let grant = Grant {
            to: Principal::parse("bob@example.com").unwrap(),
            rights: Rights::owner(),
            expires: Some(1),
        };
        let policy = Policy {
            grants: vec![grant.clone()],
            ..Policy::owner_only(owner, 3)
        };
        for (schema, written) in [
            (Grant::schema(), keys(&grant)),
            (Policy::schema(), keys(&policy)),
            (
                PublishingLicence::schema(),
                keys(&PublishingLicence {
                    body: vec![1],
                    signature: vec![2],
                }),
            ),
            (
                UseLicence::schema(),
                keys(&UseLicence {
                    body: vec![1],
                    signature: vec![2],
                    edit_certificate: Some(vec![3]),
                    access_ends: Some(4),
                }),
            ),
        ] {
            let (mut declared, required) = properties(schema);
            declared.sort();
            assert_eq!(declared, written);
            assert!(required.iter().all(|r| written.contains(r)), "{required:?}");
        }
    }
}
