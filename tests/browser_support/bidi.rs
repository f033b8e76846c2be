//! Headless Firefox (Debian's `firefox-esr`) driven over WebDriver BiDi,
//! the W3C protocol Firefox serves itself on `--remote-debugging-port`
//! (a WebSocket; no geckodriver, which Debian does not package). Port 0
//! lets Firefox pick a free port, which it prints on stderr.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tungstenite::{Message, WebSocket};

/// Preferences of the test profile: no first-run pages, and nothing that
/// would reach for the network beyond loopback (Firefox's remote agent
/// sets most automation preferences itself).
const USER_JS: &str = r#"
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
user_pref("messaging-system.rsexperimentloader.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("browser.region.network.url", "");
"#;

/// One Firefox process with its own fresh profile, and the BiDi session
/// on it.
pub struct Firefox {
    child: Child,
    ws: Mutex<(WebSocket<TcpStream>, u64)>,
    /// Firefox's last lines on stderr, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

impl Firefox {
    pub fn start(exe: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        std::fs::write(profile.path().join("user.js"), USER_JS).unwrap();
        let mut child = Command::new(exe)
            .args(["--headless", "--no-remote", "--remote-debugging-port", "0", "--profile"])
            .arg(profile.path())
            .arg("about:blank")
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            // Its own group, so the content processes go with it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start firefox");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = channel();
        let (stderr, log2) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("WebDriver BiDi listening on ") {
                    let _ = tx.send(line[at..].rsplit(' ').next().unwrap_or("").to_string());
                }
                let mut l = log2.lock().unwrap();
                l.push(line);
                let n = l.len();
                if n > 40 {
                    l.drain(..n - 40);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("firefox did not start its remote agent: {:?}", log.lock().unwrap()));
        let addr = url.trim_start_matches("ws://").trim_end_matches('/');
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (ws, _) = tungstenite::client(format!("{url}/session"), stream).expect("BiDi WebSocket");
        let ff = Self {
            child,
            ws: Mutex::new((ws, 0)),
            log,
            _profile: profile,
        };
        ff.call("session.new", json!({"capabilities": {}}));
        ff
    }

    /// Sends one command and waits for its answer (events, which the
    /// tests never subscribe to, are skipped); an error fails the test.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let mut guard = self.ws.lock().unwrap();
        let (ws, last) = &mut *guard;
        *last += 1;
        let id = *last;
        let msg = json!({"id": id, "method": method, "params": params});
        ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let m = ws
                .read()
                .unwrap_or_else(|e| panic!("{method}: {e}; firefox: {:?}", self.log.lock().unwrap()));
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"].as_u64() == Some(id) {
                assert_ne!(v["type"], "error", "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// A new tab at `width` x `height` CSS pixels (`mobile`: twice as many
    /// device pixels, as a phone has).
    pub fn tab(&self, width: u32, height: u32, mobile: bool) -> Tab<'_> {
        let created = self.call("browsingContext.create", json!({"type": "tab"}));
        let tab = Tab {
            browser: self,
            context: created["context"].as_str().unwrap().to_string(),
        };
        self.call(
            "browsingContext.setViewport",
            json!({
                "context": tab.context,
                "viewport": {"width": width, "height": height},
                "devicePixelRatio": if mobile { 2 } else { 1 },
            }),
        );
        tab
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this child leads.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// One tab (a top-level browsing context).
pub struct Tab<'b> {
    browser: &'b Firefox,
    context: String,
}

impl Tab<'_> {
    pub fn goto(&self, url: &str) {
        self.browser.call(
            "browsingContext.navigate",
            json!({"context": self.context, "url": url, "wait": "complete"}),
        );
    }

    /// The raw result of running `script` (awaiting a promise): a BiDi
    /// remote value, or the exception it threw.
    fn evaluate(&self, script: &str) -> Result<Value, Value> {
        self.evaluate_in(&self.context, script)
    }

    fn evaluate_in(&self, context: &str, script: &str) -> Result<Value, Value> {
        let r = self.browser.call(
            "script.evaluate",
            json!({
                "expression": script,
                "target": {"context": context},
                "awaitPromise": true,
                "resultOwnership": "none",
                "serializationOptions": {"maxObjectDepth": 16, "maxDomDepth": 0},
            }),
        );
        match r["type"].as_str() {
            Some("success") => Ok(r["result"].clone()),
            _ => Err(r["exceptionDetails"].clone()),
        }
    }

    /// Runs `script` and returns its value as JSON, as CDP's
    /// `returnByValue` would.
    pub fn eval(&self, script: &str) -> Result<Value, Value> {
        self.evaluate(script).map(|v| to_json(&v))
    }

    /// Runs `script` in a frame of this tab whose address starts with
    /// `prefix`, or None when there is no such frame yet.
    pub fn eval_in_frame(&self, prefix: &str, script: &str) -> Option<Result<Value, Value>> {
        let tree = self
            .browser
            .call("browsingContext.getTree", json!({"root": self.context}));
        let mut todo: Vec<Value> = tree["contexts"].as_array()?.clone();
        while let Some(c) = todo.pop() {
            if c["context"] != self.context.as_str() && c["url"].as_str().is_some_and(|u| u.starts_with(prefix)) {
                let context = c["context"].as_str()?;
                return Some(self.evaluate_in(context, script).map(|v| to_json(&v)));
            }
            todo.extend(c["children"].as_array().into_iter().flatten().cloned());
        }
        None
    }

    /// Picks `file` in the file input `selector` (fires its change event).
    pub fn choose_file(&self, selector: &str, file: &Path) {
        let node = self
            .evaluate(&format!("document.querySelector({selector:?})"))
            .unwrap_or_else(|e| panic!("{selector}: {e}"));
        assert_eq!(node["type"], "node", "{selector}: {node}");
        self.browser.call(
            "input.setFiles",
            json!({
                "context": self.context,
                "element": {"sharedId": node["sharedId"]},
                "files": [file.display().to_string()],
            }),
        );
    }

    /// A PNG of the viewport, base64.
    pub fn screenshot(&self) -> String {
        let r = self
            .browser
            .call("browsingContext.captureScreenshot", json!({"context": self.context}));
        r["data"].as_str().unwrap().to_string()
    }
}

/// A BiDi remote value as plain JSON: what has no JSON form (undefined,
/// nodes, functions, NaN) becomes null.
fn to_json(v: &Value) -> Value {
    match v["type"].as_str().unwrap_or("") {
        "string" | "boolean" => v["value"].clone(),
        "number" => match &v["value"] {
            Value::Number(n) => Value::Number(n.clone()),
            Value::String(s) if s == "-0" => json!(0),
            _ => Value::Null,
        },
        "bigint" => v["value"].clone(),
        "array" => Value::Array(v["value"].as_array().into_iter().flatten().map(to_json).collect()),
        "object" => {
            let mut out = Map::new();
            for pair in v["value"].as_array().into_iter().flatten() {
                let key = match &pair[0] {
                    Value::String(s) => s.clone(),
                    other => to_json(other).to_string(),
                };
                out.insert(key, to_json(&pair[1]));
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}
