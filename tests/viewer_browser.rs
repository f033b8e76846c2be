//! The web viewer in real headless browsers, Chromium and Firefox, each
//! running every scenario, against a real server on loopback, with codes
//! and share mails over real SMTP, at a phone's and a desktop's viewport:
//! sign-in with the mailed code (a wrong one first), a shared file read as
//! text, no download for a `view` grantee, a download for an `export`
//! grantee, a damaged file refused whole, a revoked file's page naming the
//! owner, the browser listed as a device, removed from the CLI and then
//! refused, sign-out destroying the key, and a PDF in the browser's own
//! viewer.
//!
//! Screenshots go to the test's temporary folder; with
//! RIGHTSFS_UPDATE_SCREENSHOTS=1 also to docs/ (as shown in the README).

mod browser_support;
mod cli_support;

/// Each scenario is a test in `chromium::` and in `firefox::`.
macro_rules! in_each_browser {
    ($($scenario:ident),* $(,)?) => {
        mod chromium {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Kind::Chromium)
            })*
        }
        mod firefox {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Kind::Firefox)
            })*
        }
    };
}

in_each_browser!(
    phone_recipient_reads_a_shared_file_and_is_refused_what_is_not_his,
    desktop_browser_is_a_device_until_removed,
    a_file_mailed_by_the_server_opens_from_the_mails_link,
    pdf_recipient_reads_a_pdf_in_the_browsers_viewer,
);

use std::path::{Path, PathBuf};

use browser_support::{Browser, Kind, Page};
use cli_support::{Server, User};
use serde_json::json;

/// A 4x3 PNG, to see an image decrypted into a blob: URL load under the CSP.
const PNG_HEX: &str = "89504e470d0a1a0a0000000d49484452000000040000000308020000003b9639910000001049444154789c6350483800470c3839001d360f01930bca180000000049454e44ae426082";

const PLAIN: &str = "Quarterly notes\n\nThe numbers are in; only Bob may read them.\nSecond line, with ümlauts.\n";

struct World {
    server: Server,
    alice: User,
    files: PathBuf,
}

/// Alice signs up with the CLI and protects three files, sharing each with
/// Bob; the shares send Bob invitation mails.
fn world() -> World {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let docs = alice.docs();
    for (name, rights) in [
        ("notes.txt", "view"),
        ("report.txt", "view,export"),
        ("gone.txt", "view"),
    ] {
        std::fs::write(docs.join(name), PLAIN).unwrap();
        alice.ok(&["protect", name]);
        alice.ok(&[
            "share",
            &format!("{name}.rights"),
            "--to",
            &format!("bob@example.com:{rights}"),
        ]);
    }
    std::fs::write(docs.join("photo.png"), hex::decode(PNG_HEX).unwrap()).unwrap();
    alice.ok(&["protect", "photo.png"]);
    alice.ok(&["share", "photo.png.rights", "--to", "bob@example.com:view"]);
    // A damaged copy: one ciphertext bit of the last block flipped.
    let mut bytes = std::fs::read(docs.join("notes.txt.rights")).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 1;
    std::fs::write(docs.join("damaged.txt.rights"), bytes).unwrap();
    World {
        server,
        alice,
        files: docs,
    }
}

/// The viewer link in Bob's share mail.
fn link_in_mail(server: &Server) -> String {
    let mails = server.smtp.mails_to("bob@example.com");
    let mail = mails
        .iter()
        .find(|m| m.contains("alice@example.com shared ") && m.contains("/app/"))
        .expect("a share mail to bob");
    let start = mail.find("http://").expect("a link in the share mail");
    let end = start + mail[start..].find("/app/").expect("the link opens the viewer") + "/app/".len();
    mail[start..end].to_string()
}

/// Follows the mail's link and signs in as Bob: a wrong code first (a
/// clear error), then the mailed one.
fn sign_in(page: &Page, server: &Server, link: &str) {
    page.goto(link);
    page.wait_view("signin");
    let seen = server.smtp.count();
    page.fill_and_submit("#email", "bob@example.com");
    page.wait_for("!document.querySelector('#code-form').hidden");
    let code = server.smtp.code_for("bob@example.com", seen);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    page.fill_and_submit("#code", wrong);
    page.wait_for("!document.querySelector('#signin-error').hidden");
    assert!(
        page.text("#signin-error").contains("not right"),
        "{}",
        page.text("#signin-error")
    );
    page.fill_and_submit("#code", &code);
    page.wait_view("home");
}

fn open(page: &Page, file: &Path) {
    page.eval("document.body.dataset.view = 'picking'");
    page.choose_file("#file", file);
    page.wait_for("['doc', 'stop'].includes(document.body.dataset.view)");
}

fn back(page: &Page) {
    page.eval(
        "(document.querySelector('#doc').hidden ? document.querySelector('#stop-back') : document.querySelector('#close-doc')).click()",
    );
    page.wait_view("home");
}

/// Keeps a screenshot in the test's folder; Chromium's also go to docs/
/// when asked.
fn save_screenshot(page: &Page, name: &str) {
    let png = page.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let kept = format!("{}-{name}", page.kind().name().to_lowercase());
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join(kept), &png).unwrap();
    if page.kind() == Kind::Chromium && std::env::var("RIGHTSFS_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name), &png).unwrap();
    }
}

/// What Bob sees of the document: exactly the plaintext.
fn assert_shows_text(page: &Page) {
    assert_eq!(page.eval("document.querySelector('#text').textContent"), PLAIN);
}

fn phone_recipient_reads_a_shared_file_and_is_refused_what_is_not_his(kind: Kind) {
    let Some(browser) = Browser::start(kind) else { return };
    let w = world();
    let page = browser.page(390, 844, true);
    sign_in(&page, &w.server, &link_in_mail(&w.server));
    save_screenshot(&page, "viewer-phone-open.png");

    // view: the text, no download, the honest note.
    open(&page, &w.files.join("notes.txt.rights"));
    assert_eq!(page.eval("document.body.dataset.view"), "doc");
    assert_shows_text(&page);
    assert!(!page.visible("#download"), "a view grantee gets no download control");
    assert!(page.visible("#view-only"));
    assert!(page.text("#view-only").contains("Screenshots"));
    assert_eq!(
        page.eval("document.querySelector('#content').classList.contains('no-copy')"),
        true
    );
    assert_eq!(page.text("#doc-name"), "notes.txt");
    save_screenshot(&page, "viewer-phone.png");
    back(&page);

    // view,export: a download control.
    open(&page, &w.files.join("report.txt.rights"));
    assert_shows_text(&page);
    assert!(page.visible("#download"));
    assert!(!page.visible("#view-only"));
    back(&page);

    // Damaged: an error, and none of the plaintext.
    open(&page, &w.files.join("damaged.txt.rights"));
    assert_eq!(page.eval("document.body.dataset.view"), "stop");
    assert_eq!(page.eval("document.body.dataset.stop"), "damaged");
    let body = page.text("body");
    assert!(!body.contains("Quarterly") && !body.contains("only Bob"), "{body}");
    assert_eq!(page.eval("document.querySelector('#content').childElementCount"), 0);
    back(&page);

    // Revoked by the owner: a page naming her.
    w.alice.ok(&["revoke", "gone.txt.rights"]);
    open(&page, &w.files.join("gone.txt.rights"));
    assert_eq!(page.eval("document.body.dataset.stop"), "revoked");
    assert!(page.text("#stop-owner").contains("alice@example.com"));
    save_screenshot(&page, "viewer-phone-revoked.png");
    back(&page);

    // Sign-out: the device is removed on the server and its key here.
    page.eval("document.querySelector('#logout').click()");
    page.wait_view("signin");
    let stored = page.eval(
        "new Promise((ok) => { const r = indexedDB.open('rightsfs-viewer', 1); \
         r.onsuccess = () => { const g = r.result.transaction('device').objectStore('device').count(); \
         g.onsuccess = () => ok(g.result); }; })",
    );
    assert_eq!(stored, 0, "the device key is gone from IndexedDB");
    let bob = User::new("bob@example.com", true);
    bob.signup(&w.server);
    let devices = bob.ok(&["devices"]);
    assert!(!devices.contains("web viewer"), "{devices}");
}

fn desktop_browser_is_a_device_until_removed(kind: Kind) {
    let Some(browser) = Browser::start(kind) else { return };
    let w = world();
    let page = browser.page(1280, 860, false);
    // Five wrong codes make the address wait, and the page says so; the
    // code still works once the wait is over (nobody can lock bob out).
    page.goto(&link_in_mail(&w.server));
    page.wait_view("signin");
    let seen = w.server.smtp.count();
    page.fill_and_submit("#email", "bob@example.com");
    page.wait_for("!document.querySelector('#code-form').hidden");
    let code = w.server.smtp.code_for("bob@example.com", seen);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    for _ in 0..5 {
        page.eval("document.querySelector('#signin-error').hidden = true");
        page.fill_and_submit("#code", wrong);
        page.wait_for("!document.querySelector('#signin-error').hidden");
    }
    assert!(
        page.text("#signin-error").contains("Too many wrong codes"),
        "{}",
        page.text("#signin-error")
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    page.fill_and_submit("#code", &code);
    page.wait_view("home");
    open(&page, &w.files.join("notes.txt.rights"));
    assert_shows_text(&page);
    assert!(!page.visible("#download"));
    save_screenshot(&page, "viewer-desktop.png");
    back(&page);

    // An image: decrypted into a blob: URL the page's CSP allows.
    open(&page, &w.files.join("photo.png.rights"));
    page.wait_for("document.querySelector('#image').complete");
    assert_eq!(page.eval("document.querySelector('#image').naturalWidth"), 4);
    assert!(!page.visible("#download"));
    back(&page);

    // Listed by `rights devices` on Bob's computer; removed there...
    let bob = User::new("bob@example.com", true);
    bob.signup(&w.server);
    let devices = bob.ok(&["devices", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&devices).unwrap();
    let web = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["name"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("web viewer ({} on ", kind.name()))
        })
        .unwrap_or_else(|| panic!("the browser is one of bob's devices: {devices}"));
    assert_eq!(web["reader_only"], true);
    bob.ok(&["devices", "--remove", web["id"].as_str().unwrap()]);

    // ...the browser is refused and forgets its key.
    open(&page, &w.files.join("notes.txt.rights"));
    assert_eq!(page.eval("document.body.dataset.stop"), "signed_out");
    assert!(!page.text("body").contains("Quarterly"));
}

/// An access token for `email` on a new device, through the real mail
/// exchange (what `rights` does; the sending client is the API here).
fn api_login(server: &Server, email: &str) -> String {
    use base64::Engine;
    let http = reqwest::blocking::Client::new();
    let seen = server.smtp.count();
    let r = http
        .post(format!("{}/v1/auth/start", server.url))
        .json(&serde_json::json!({"email": email}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    let code = server.smtp.code_for(email, seen);
    let device = rightsfs::crypto::DeviceKeyPair::generate().unwrap();
    let der = base64::engine::general_purpose::STANDARD.encode(device.public().to_der());
    let v: serde_json::Value = http
        .post(format!("{}/v1/auth/verify", server.url))
        .json(&serde_json::json!({"email": email, "code": code, "device_name": "sender", "device_public_key": der}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["access_token"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
}

fn a_file_mailed_by_the_server_opens_from_the_mails_link(kind: Kind) {
    use base64::Engine;
    let Some(browser) = Browser::start(kind) else { return };
    let w = world();
    let token = api_login(&w.server, "alice@example.com");
    let bytes = std::fs::read(w.files.join("notes.txt.rights")).unwrap();
    let id = hex::encode(&bytes[14..30]);
    let http = reqwest::blocking::Client::new();
    let send = |file: &[u8]| {
        http.post(format!("{}/v1/content/{id}/send", w.server.url))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "to": ["carol@example.com"],
                "name": "notes.txt.rights",
                "file": base64::engine::general_purpose::STANDARD.encode(file),
            }))
            .send()
            .unwrap()
    };
    // The server takes only this content's protected file, never plaintext.
    let r = send(PLAIN.as_bytes());
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["error"]["code"], "not_this_file");
    let other = std::fs::read(w.files.join("report.txt.rights")).unwrap();
    assert_eq!(send(&other).status(), 400);
    assert!(w.server.smtp.mails_to("carol@example.com").is_empty());

    // A message protected like the file: Alice protects it herself (the
    // CLI does this in memory) and registers it; the server only relays it.
    let docs = w.alice.docs();
    std::fs::write(docs.join("message.txt"), "Carol, here are the notes we spoke about.\n").unwrap();
    w.alice
        .ok(&["protect", "message.txt", "--to", "carol@example.com:view"]);
    let message = std::fs::read(docs.join("message.txt.rights")).unwrap();
    let mid = hex::encode(&message[14..30]);
    let r = http
        .post(format!("{}/v1/content/{id}/send", w.server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "to": ["carol@example.com"],
            "name": "notes.txt.rights",
            "file": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "message_file": base64::engine::general_purpose::STANDARD.encode(&message),
        }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let out: serde_json::Value = r.json().unwrap();
    assert_eq!(out["sent"], serde_json::json!(["carol@example.com"]));
    let link = out["link"].as_str().unwrap().to_string();
    assert!(link.ends_with(&format!("/app/#file={id}&message={mid}")), "{link}");
    let kept = w.server.data.path().join("sent").join(format!("{id}.rights"));
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        bytes,
        "the server keeps the protected bytes"
    );

    // One well-formed mail: from the server in Alice's name, replies to
    // her, both parts, the file attached, the link.
    let mails = w.server.smtp.mails_to("carol@example.com");
    assert_eq!(mails.len(), 1);
    // Long lines travel quoted-printable: undo its soft breaks and '='.
    let m = &mails[0].replace("=\r\n", "").replace("=3D", "=");
    // The display name holds an '@', so it travels RFC 2047-encoded.
    let name = base64::engine::general_purpose::STANDARD.encode("alice@example.com via rightsfs");
    for needle in [
        &format!("From: =?utf-8?b?{name}?= <rights@example.com>"),
        "Reply-To: alice@example.com",
        "Message-ID: <",
        "Date: ",
        "MIME-Version: 1.0",
        "multipart/mixed",
        "text/plain",
        "text/html",
        "filename=\"notes.txt.rights\"",
        "filename=\"message.txt.rights\"",
        "Your rights: view",
        &format!("/app/#file={id}&amp;message={mid}"),
        &format!("/app/#file={id}&message={mid}"),
    ] {
        assert!(m.contains(needle), "{needle} missing from:\n{m}");
    }
    assert!(!m.contains("here are the notes"), "the message travels protected");

    // Carol follows the link on her phone, signs in, and reads.
    let page = browser.page(390, 844, true);
    page.goto(&link);
    page.wait_view("signin");
    let seen = w.server.smtp.count();
    page.fill_and_submit("#email", "carol@example.com");
    page.wait_for("!document.querySelector('#code-form').hidden");
    page.fill_and_submit("#code", &w.server.smtp.code_for("carol@example.com", seen));
    // The message first, then the file.
    page.wait_view("doc");
    assert_eq!(
        page.eval("document.querySelector('#text').textContent"),
        "Carol, here are the notes we spoke about.\n"
    );
    assert_eq!(page.text("#doc-name"), "message.txt");
    assert!(page.visible("#next"));
    page.eval("document.body.dataset.view = 'next'; document.querySelector('#next').click()");
    page.wait_view("doc");
    assert_shows_text(&page);
    assert!(!page.visible("#next"));
    assert_eq!(page.text("#doc-name"), "notes.txt");
    assert!(!page.visible("#download"));
    assert_eq!(page.eval("location.hash"), "", "the link's fragment is dropped");
    save_screenshot(&page, "viewer-phone-from-mail.png");

    // Revoking deletes the kept copy; the link then shows the message,
    // and the revoked page instead of the file.
    w.alice.ok(&["revoke", "notes.txt.rights"]);
    assert!(!kept.exists(), "revocation deletes the server's copy");
    page.eval("document.body.dataset.view = 'following'");
    page.goto(&link);
    page.wait_view("doc");
    assert_eq!(page.text("#doc-name"), "message.txt");
    page.eval("document.body.dataset.view = 'next'; document.querySelector('#next').click()");
    page.wait_view("stop");
    assert_eq!(page.eval("document.body.dataset.stop"), "revoked");
}

/// A one-page PDF (400 x 200 pt) showing `text` in Helvetica, with its
/// cross-reference table at the right offsets.
fn tiny_pdf(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 24 Tf 36 100 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = vec![];
    for (i, o) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        pdf.extend(format!("{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

const PDF_TEXT: &str = "Hello from a protected PDF";

/// Chromium's PDF viewer (a component extension with a fixed id).
const CHROMIUM_PDF_VIEWER: &str = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/";

/// Keeps every Blob the page turns into a URL, by URL, to compare what a
/// frame shows with what was protected.
const RECORD_BLOBS: &str = "(() => { const make = URL.createObjectURL; window.blobs = {}; \
    URL.createObjectURL = (b) => { const u = make.call(URL, b); window.blobs[u] = b; return u; }; return true; })()";

/// The type and hex bytes of the Blob behind the PDF frame.
const PDF_BLOB: &str = "(async () => { const b = window.blobs[document.querySelector('#pdf').src.split('#')[0]]; \
    return [b.type, Array.from(new Uint8Array(await b.arrayBuffer()), (x) => x.toString(16).padStart(2, '0')).join('')]; })()";

/// Whether the element a person would hit at the centre of `button` in
/// Firefox's PDF viewer is that viewer's frame (false: the page clips it).
fn firefox_pdf_button_reachable(page: &Page, button: &str) -> bool {
    let at = page.wait_in_frame(
        "blob:",
        &format!(
            "(() => {{ const r = document.getElementById({button:?}).getBoundingClientRect(); \
             return r.width > 0 && [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ),
    );
    page.eval(&format!(
        "(() => {{ const f = document.querySelector('#pdf').getBoundingClientRect(); \
         return document.elementFromPoint(f.x + {}, f.y + {}) === document.querySelector('#pdf'); }})()",
        at[0], at[1]
    )) == json!(true)
}

/// The browser's own viewer shows the PDF: Chromium's has laid out its one
/// 400 x 200 pt page; Firefox's (pdf.js) has drawn it and put its text in
/// the text layer. Returns whether the viewer's save and print controls
/// can be reached.
fn pdf_shown_by_the_browser(page: &Page) -> bool {
    match page.kind() {
        Kind::Chromium => {
            let v = page.wait_in_frame(
                CHROMIUM_PDF_VIEWER,
                "(() => { const v = document.querySelector('pdf-viewer'); const d = v.documentDimensions; \
                 return d && d.pageDimensions.length > 0 && [d.pageDimensions.length, d.pageDimensions[0].width / d.pageDimensions[0].height, \
                 !v.shadowRoot.querySelector('#toolbar').hidden]; })()",
            );
            assert_eq!(v[0], 1, "one page: {v}");
            // Its page box includes a few pixels of border.
            let ratio = v[1].as_f64().unwrap();
            assert!((1.9..2.1).contains(&ratio), "400 x 200 pt: {v}");
            v[2] == json!(true)
        }
        Kind::Firefox => {
            let text = page.wait_in_frame("blob:", "document.querySelector('.textLayer')?.textContent");
            assert_eq!(text, PDF_TEXT);
            let inked = page.wait_in_frame(
                "blob:",
                "(() => { const c = document.querySelector('.canvasWrapper canvas'); \
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
                 let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; })()",
            );
            assert!(inked.as_u64().unwrap() > 100, "the page is drawn: {inked}");
            let save = firefox_pdf_button_reachable(page, "downloadButton");
            assert_eq!(save, firefox_pdf_button_reachable(page, "printButton"));
            save
        }
    }
}

/// A PDF shared for `view` shows in the browser's own viewer, from a blob
/// holding exactly the protected PDF, with no download control on the
/// page and the viewer's save and print out of reach; shared with
/// `export`, the download control and the viewer's own are there.
fn pdf_recipient_reads_a_pdf_in_the_browsers_viewer(kind: Kind) {
    let Some(browser) = Browser::start(kind) else { return };
    let w = world();
    let pdf = tiny_pdf(PDF_TEXT);
    for (name, rights) in [("paper.pdf", "view"), ("handout.pdf", "view,export")] {
        std::fs::write(w.files.join(name), &pdf).unwrap();
        w.alice.ok(&["protect", name]);
        w.alice.ok(&[
            "share",
            &format!("{name}.rights"),
            "--to",
            &format!("bob@example.com:{rights}"),
        ]);
    }
    let page = browser.page(1280, 860, false);
    sign_in(&page, &w.server, &link_in_mail(&w.server));
    page.eval(RECORD_BLOBS);

    open(&page, &w.files.join("paper.pdf.rights"));
    assert_eq!(page.eval("document.body.dataset.view"), "doc");
    assert!(!page.visible("#download"), "a view grantee gets no download control");
    assert!(page.visible("#view-only"));
    let blob = page.eval(PDF_BLOB);
    assert_eq!(blob, json!(["application/pdf", hex::encode(&pdf)]));
    assert!(
        !pdf_shown_by_the_browser(&page),
        "the viewer's save and print are out of reach"
    );
    save_screenshot(&page, "viewer-pdf.png");
    back(&page);

    open(&page, &w.files.join("handout.pdf.rights"));
    assert!(page.visible("#download"));
    assert_eq!(page.eval(PDF_BLOB), json!(["application/pdf", hex::encode(&pdf)]));
    assert!(
        pdf_shown_by_the_browser(&page),
        "with export the viewer keeps its toolbar"
    );
}
