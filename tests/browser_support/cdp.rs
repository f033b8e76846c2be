//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: commands on the
//! browser's fd 3, answers on its fd 4, each a JSON text ended by NUL), so
//! driving it needs no WebSocket client.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

type Waiters = Arc<Mutex<HashMap<u64, Sender<Value>>>>;

/// One Chromium process with its own fresh profile.
pub struct Chromium {
    child: Child,
    to_browser: Mutex<File>,
    waiters: Waiters,
    next_id: Mutex<u64>,
    _profile: tempfile::TempDir,
}

/// A pipe whose ends are numbered 10 or more: the child's dup2 onto 3 and
/// 4 must never find an end already there (dup2 onto itself would leave
/// it close-on-exec, and onto the other end would close that one), which
/// happens when the browser is the test's first open file.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two new descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let high = |fd: i32| {
        // SAFETY: fd is open and ours; F_DUPFD_CLOEXEC makes a new one we own.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(moved >= 10);
        // SAFETY: fd is ours and no longer needed; moved is new and ours.
        unsafe {
            libc::close(fd);
            OwnedFd::from_raw_fd(moved)
        }
    };
    (high(fds[0]), high(fds[1]))
}

impl Chromium {
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
    pub fn tab(&self, width: u32, height: u32, mobile: bool) -> Tab<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let tab = Tab {
            browser: self,
            session: attached["sessionId"].as_str().unwrap().to_string(),
            target: target["targetId"].as_str().unwrap().to_string(),
        };
        tab.call("Page.enable", json!({}));
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile}),
        );
        if mobile {
            tab.call("Emulation.setTouchEmulationEnabled", json!({"enabled": true}));
        }
        tab
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One attached tab.
pub struct Tab<'b> {
    browser: &'b Chromium,
    session: String,
    target: String,
}

impl Tab<'_> {
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params)
    }

    pub fn goto(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// Runs `script` (awaiting a promise) and returns its value as JSON,
    /// or the exception it threw.
    pub fn eval(&self, script: &str) -> Result<Value, Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": script, "awaitPromise": true, "returnByValue": true}),
        );
        match r.get("exceptionDetails") {
            Some(e) => Err(e.clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Runs `script` in a frame of this tab whose address starts with
    /// `prefix` and that runs in a process of its own (the browser's PDF
    /// viewer does), or None when there is no such frame yet.
    pub fn eval_in_frame(&self, prefix: &str, script: &str) -> Option<Result<Value, Value>> {
        let targets = self.browser.call(None, "Target.getTargets", json!({}));
        let frame = targets["targetInfos"].as_array()?.iter().find(|t| {
            t["type"] == "iframe"
                && t["parentId"] == self.target.as_str()
                && t["url"].as_str().is_some_and(|u| u.starts_with(prefix))
        })?;
        let attached = self.browser.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": frame["targetId"], "flatten": true}),
        );
        let session = attached["sessionId"].as_str().unwrap();
        let r = self.browser.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": script, "awaitPromise": true, "returnByValue": true}),
        );
        self.browser
            .call(None, "Target.detachFromTarget", json!({"sessionId": session}));
        Some(match r.get("exceptionDetails") {
            Some(e) => Err(e.clone()),
            None => Ok(r["result"]["value"].clone()),
        })
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

    /// A PNG of the viewport, base64.
    pub fn screenshot(&self) -> String {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        r["data"].as_str().unwrap().to_string()
    }
}
