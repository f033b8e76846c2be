//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: commands on the
//! browser's fd 3, answers on its fd 4, each a JSON text ended by NUL), so
//! the browser tests need no WebSocket client or other dependency.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The system Chromium, or None (the test then says it was skipped, and
/// fails under CI, where scripts/install-deps.sh installs it).
pub fn chromium() -> Option<&'static str> {
    let path = "/usr/bin/chromium";
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but /usr/bin/chromium is missing: run scripts/install-deps.sh"
    );
    eprintln!("SKIPPED: browser tests need /usr/bin/chromium (apt-get install chromium)");
    None
}

type Waiters = Arc<Mutex<HashMap<u64, Sender<Value>>>>;

/// One browser process with its own fresh profile.
pub struct Browser {
    child: Child,
    to_browser: Mutex<File>,
    waiters: Waiters,
    next_id: Mutex<u64>,
    _profile: tempfile::TempDir,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two new descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned nowhere else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    pub fn start(exe: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let (cmd_read, cmd_write) = pipe();
        let (ans_read, ans_write) = pipe();
        let (r, w) = (cmd_read.as_raw_fd(), ans_write.as_raw_fd());
        let mut command = Command::new(exe);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        drop((cmd_read, ans_write));
        let waiters: Waiters = Arc::default();
        let w2 = waiters.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(File::from(ans_read));
            let mut buf = Vec::new();
            while reader.read_until(0, &mut buf).map(|n| n > 0).unwrap_or(false) {
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && let Some(id) = v["id"].as_u64()
                    && let Some(tx) = w2.lock().unwrap().remove(&id)
                {
                    let _ = tx.send(v);
                }
                buf.clear();
            }
        });
        Self {
            child,
            to_browser: Mutex::new(File::from(cmd_write)),
            waiters,
            next_id: Mutex::new(0),
            _profile: profile,
        }
    }

    /// Sends one command (to a page when `session` is given) and waits for
    /// its answer; a protocol error fails the test.
    pub fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            *n
        };
        let (tx, rx): (Sender<Value>, Receiver<Value>) = channel();
        self.waiters.lock().unwrap().insert(id, tx);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to_browser.lock().unwrap().write_all(&bytes).unwrap();
        let answer = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no answer from chromium to {method}"));
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// A new tab at `width` x `height` CSS pixels (`mobile`: a phone's
    /// viewport and touch), attached.
    pub fn page(&self, width: u32, height: u32, mobile: bool) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let page = Page {
            browser: self,
            session: attached["sessionId"].as_str().unwrap().to_string(),
        };
        page.call("Page.enable", json!({}));
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile}),
        );
        if mobile {
            page.call("Emulation.setTouchEmulationEnabled", json!({"enabled": true}));
        }
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Page<'_> {
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params)
    }

    pub fn goto(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// Evaluates `expr` (awaiting a promise) and returns its JSON value.
    pub fn eval(&self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is truthy, up to a minute (the page decrypts,
    /// generates RSA keys and talks to the server meanwhile).
    pub fn wait_for(&self, expr: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.eval(&format!(
                "(() => {{ try {{ return {expr}; }} catch {{ return null; }} }})()"
            ));
            if !v.is_null() && v != json!(false) && v != json!("") {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {expr}; page: {}",
                self.eval("document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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
        let doc = self.call("DOM.getDocument", json!({}));
        let node = self.call(
            "DOM.querySelector",
            json!({"nodeId": doc["root"]["nodeId"], "selector": selector}),
        );
        self.call(
            "DOM.setFileInputFiles",
            json!({"nodeId": node["nodeId"], "files": [file.display().to_string()]}),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap()
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
