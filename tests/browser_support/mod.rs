//! Real browsers for the viewer's tests: Debian's headless Chromium over
//! the DevTools protocol (`cdp`) and Debian's Firefox ESR over WebDriver
//! BiDi (`bidi`). A `Page` hides which one it is, so every scenario runs
//! the same steps in both.

#![allow(dead_code)]

pub mod bidi;
pub mod cdp;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Which browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chromium,
    Firefox,
}

impl Kind {
    /// The system binary (from scripts/install-deps.sh).
    pub fn exe(self) -> &'static str {
        match self {
            Kind::Chromium => "/usr/bin/chromium",
            Kind::Firefox => "/usr/bin/firefox-esr",
        }
    }

    /// The Debian package that brings it.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Chromium => "chromium",
            Kind::Firefox => "firefox-esr",
        }
    }

    /// The name the viewer gives the browser in its device name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chromium => "Chromium",
            Kind::Firefox => "Firefox",
        }
    }
}

/// One browser process with its own fresh profile.
pub enum Browser {
    Chromium(cdp::Chromium),
    Firefox(Box<bidi::Firefox>),
}

impl Browser {
    /// Starts `kind`, or returns None when it is not installed (the test
    /// then says it was skipped, and fails under CI, where
    /// scripts/install-deps.sh installs it).
    pub fn start(kind: Kind) -> Option<Self> {
        let exe = kind.exe();
        if !Path::new(exe).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {exe} is missing: run scripts/install-deps.sh"
            );
            eprintln!("SKIPPED: browser tests need {exe} (apt-get install {})", kind.package());
            return None;
        }
        Some(match kind {
            Kind::Chromium => Browser::Chromium(cdp::Chromium::start(exe)),
            Kind::Firefox => Browser::Firefox(Box::new(bidi::Firefox::start(exe))),
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Browser::Chromium(_) => Kind::Chromium,
            Browser::Firefox(_) => Kind::Firefox,
        }
    }

    /// A new tab at `width` x `height` CSS pixels (`mobile`: a phone's
    /// pixel density, and touch where the browser emulates it).
    pub fn page(&self, width: u32, height: u32, mobile: bool) -> Page<'_> {
        match self {
            Browser::Chromium(b) => Page::Cdp(b.tab(width, height, mobile)),
            Browser::Firefox(b) => Page::Bidi(b.tab(width, height, mobile)),
        }
    }
}

/// One tab.
pub enum Page<'b> {
    Cdp(cdp::Tab<'b>),
    Bidi(bidi::Tab<'b>),
}

impl Page<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Page::Cdp(_) => Kind::Chromium,
            Page::Bidi(_) => Kind::Firefox,
        }
    }

    pub fn goto(&self, url: &str) {
        match self {
            Page::Cdp(t) => t.goto(url),
            Page::Bidi(t) => t.goto(url),
        }
    }

    /// Runs `script` (awaiting a promise) and returns its JSON value, or
    /// the exception it threw.
    pub fn try_eval(&self, script: &str) -> Result<Value, Value> {
        match self {
            Page::Cdp(t) => t.eval(script),
            Page::Bidi(t) => t.eval(script),
        }
    }

    /// Runs `script` (awaiting a promise) and returns its JSON value; an
    /// exception fails the test.
    pub fn eval(&self, script: &str) -> Value {
        self.try_eval(script).unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `expr` is truthy in a frame of this page whose address
    /// starts with `prefix` (one the page cannot script, such as the
    /// browser's PDF viewer), up to a minute.
    pub fn wait_in_frame(&self, prefix: &str, expr: &str) -> Value {
        let script = guarded(expr);
        poll(|| {
            let v = match self {
                Page::Cdp(t) => t.eval_in_frame(prefix, &script),
                Page::Bidi(t) => t.eval_in_frame(prefix, &script),
            };
            match v {
                Some(Ok(v)) => v,
                _ => Value::Null,
            }
        })
        .unwrap_or_else(|| panic!("timed out waiting for {expr} in a frame at {prefix}"))
    }

    /// Waits until `expr` is truthy, up to a minute (the page decrypts,
    /// generates RSA keys and talks to the server meanwhile).
    pub fn wait_for(&self, expr: &str) -> Value {
        let script = guarded(expr);
        poll(|| self.eval(&script)).unwrap_or_else(|| {
            panic!(
                "timed out waiting for {expr}; page: {}",
                self.eval("document.body.innerText")
            )
        })
    }

    /// Waits for the page to show `view` (its `body[data-view]`).
    pub fn wait_view(&self, view: &str) {
        self.wait_for(&format!("document.body.dataset.view === {view:?}"));
    }

    /// Types into an input and submits its form, as a person would.
    pub fn fill_and_submit(&self, input: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const i = document.querySelector({input:?}); i.value = {value:?}; i.form.requestSubmit(); return true; }})()"
        ));
    }

    /// Picks `file` in the file input `selector` (fires its change event).
    pub fn choose_file(&self, selector: &str, file: &Path) {
        match self {
            Page::Cdp(t) => t.choose_file(selector, file),
            Page::Bidi(t) => t.choose_file(selector, file),
        }
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let data = match self {
            Page::Cdp(t) => t.screenshot(),
            Page::Bidi(t) => t.screenshot(),
        };
        base64::engine::general_purpose::STANDARD.decode(data).unwrap()
    }

    pub fn text(&self, selector: &str) -> String {
        self.eval(&format!("document.querySelector({selector:?}).innerText"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn visible(&self, selector: &str) -> bool {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); return !!e && e.offsetParent !== null && !e.hidden; }})()"
        )) == json!(true)
    }
}

/// `expr` as a script whose exceptions are null.
fn guarded(expr: &str) -> String {
    format!("(() => {{ try {{ return {expr}; }} catch {{ return null; }} }})()")
}

/// Calls `f` until it returns a truthy value, which it returns, for up to
/// a minute (the page decrypts, generates RSA keys and talks to the server
/// meanwhile); then None.
fn poll(mut f: impl FnMut() -> Value) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = f();
        if !v.is_null() && v != json!(false) && v != json!("") {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
