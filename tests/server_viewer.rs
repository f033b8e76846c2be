//! What the server does for the web viewer, over real HTTP on loopback:
//! reader-only devices (registered like any device, given use licences,
//! never accepted as the signer of a publishing licence) and the viewer's
//! embedded files with their Content-Security-Policy.

mod server_support;

use rightsfs::policy::{Email, Policy, UseLicence};
use serde_json::json;
use server_support::{Server, Smtp, make_pl};

fn setup() -> (tempfile::TempDir, Smtp, Server) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start();
    let server = Server::start(dir.path(), &smtp, &[]);
    (dir, smtp, server)
}

#[test]
fn a_reader_device_reads_but_never_signs_a_publishing_licence() {
    let (_dir, smtp, server) = setup();
    let (kem, verify_key) = server.keys();
    // The attack: a reader device whose key can in fact sign (the test
    // holds the private key) signs a licence for its own account.
    let reader = server.login_device(&smtp, "alice@example.com", true, true);
    let alice = Email::parse("alice@example.com").unwrap();
    let (pl, id, cek) = make_pl(&reader, kem, Policy::owner_only(alice.clone(), 3));
    let (s, r) = server.post("/v1/content", Some(&reader.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 403, "{r}");
    assert_eq!(r["error"]["code"], "unknown_device");
    let (s, r) = server.post(
        "/v1/content/batch",
        Some(&reader.access),
        json!({"publishing_licences": [pl]}),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["results"][0]["status"], 403, "{r}");
    assert_eq!(r["results"][0]["error"], "unknown_device");

    // The same licence signed by a full device of the same account is fine,
    // and the reader then gets use licences like any device.
    let full = server.login(&smtp, "alice@example.com", false);
    let (pl, id2, cek2) = make_pl(&full, kem, Policy::owner_only(alice, 3));
    let (s, r) = server.post("/v1/content", Some(&full.access), json!({"publishing_licence": pl}));
    assert_eq!(s, 201, "{r}");
    let (s, ul) = server.post(
        &format!("/v1/content/{}/licence", id2.to_hex()),
        Some(&reader.access),
        json!({}),
    );
    assert_eq!(s, 200, "{ul}");
    let ul: UseLicence = serde_json::from_value(ul).unwrap();
    let body = ul.verify(&verify_key).unwrap();
    assert_eq!(body.device_id, reader.device_id);
    assert_eq!(
        reader.device.unwrap_key(&body.wrapped_key).unwrap().as_bytes(),
        cek2.as_bytes()
    );
    // The refused content was never registered.
    let (s, _) = server.get(&format!("/v1/content/{}", id.to_hex()), &full.access);
    assert_eq!(s, 404);
    drop(cek);

    // Listed among the account's devices, marked; removable, then refused.
    let (s, devs) = server.get("/v1/devices", &full.access);
    assert_eq!(s, 200);
    let mut kinds: Vec<(String, bool)> = devs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["reader_only"].as_bool().unwrap(),
            )
        })
        .collect();
    kinds.sort_by_key(|k| !k.1);
    assert_eq!(
        kinds,
        [(reader.device_id.clone(), true), (full.device_id.clone(), false)]
    );
    let (s, _) = server.call(
        reqwest::Method::DELETE,
        &format!("/v1/devices/{}", reader.device_id),
        Some(&full.access),
        None,
    );
    assert_eq!(s, 204);
    let (s, _) = server.post(
        &format!("/v1/content/{}/licence", id2.to_hex()),
        Some(&reader.access),
        json!({}),
    );
    assert_eq!(s, 401);
    let (s, _) = server.post("/v1/auth/refresh", None, json!({"refresh_token": reader.refresh}));
    assert_eq!(s, 401);
}

#[test]
fn the_viewer_is_served_with_a_strict_content_security_policy() {
    let (_dir, _smtp, server) = setup();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| http.get(format!("{}{path}", server.url)).send().unwrap();
    let r = get("/app");
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/app/");
    for (path, kind) in [
        ("/app/", "text/html"),
        ("/app/app.css", "text/css"),
        ("/app/js/main.js", "text/javascript"),
        ("/app/js/format.js", "text/javascript"),
    ] {
        let r = get(path);
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    // The page has no inline script or style for the policy to allow.
    let html = get("/app/").text().unwrap();
    assert!(!html.contains("<script>") && !html.contains("style="), "{html}");
    assert!(html.contains(r#"<script type="module" src="js/main.js"></script>"#));
    // Every file of web/app is embedded (a module missing from the binary
    // would break the page only in a browser).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/app");
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
            let r = get(&format!("/app/{rel}"));
            assert_eq!(r.status(), 200, "{rel} is not served");
            assert_eq!(r.bytes().unwrap(), std::fs::read(&p).unwrap(), "{rel}");
        }
    }
    // Only the embedded files: nothing from the disk, however named.
    let r = get("/app/js/%2e%2e/%2e%2e/Cargo.toml");
    assert_eq!(r.status(), 404);
    let r = get("/app/nothing.js");
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["error"]["code"], "not_found");
}
