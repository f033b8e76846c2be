//! A few counters exposed in the Prometheus text format at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    /// HTTP requests answered.
    pub requests: AtomicU64,
    /// Answers with a 4xx status.
    pub client_errors: AtomicU64,
    /// Answers with a 5xx status.
    pub server_errors: AtomicU64,
    /// Use licences issued.
    pub licences_issued: AtomicU64,
    /// Use licences refused.
    pub licences_refused: AtomicU64,
    /// Codes mailed.
    pub codes_sent: AtomicU64,
    /// Sign-ins completed.
    pub logins: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, c) in [
            ("rights_http_requests_total", "HTTP requests answered", &self.requests),
            (
                "rights_http_client_errors_total",
                "answers with a 4xx status",
                &self.client_errors,
            ),
            (
                "rights_http_server_errors_total",
                "answers with a 5xx status",
                &self.server_errors,
            ),
            (
                "rights_licences_issued_total",
                "use licences issued",
                &self.licences_issued,
            ),
            (
                "rights_licences_refused_total",
                "use licences refused",
                &self.licences_refused,
            ),
            ("rights_codes_sent_total", "one-time codes mailed", &self.codes_sent),
            ("rights_logins_total", "sign-ins completed", &self.logins),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        out
    }
}
