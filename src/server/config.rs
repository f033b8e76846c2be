//! `rights-server serve` options: command line, environment
//! (`RIGHTS_SERVER_*`) and a TOML file, in that order of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// The licensing server of rightsfs.
#[derive(Parser, Debug)]
#[command(name = "rights-server", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server until SIGTERM or SIGINT.
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document of the HTTP API (as `GET /v1/openapi.json` serves it).
    Openapi,
}

/// How mail reaches the SMTP relay.
#[derive(ValueEnum, Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (only sensible on loopback or a trusted network).
    None,
    /// Upgrade with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Options of `serve`. Every option may also be set in the `--config` file
/// (same names, with `_` for `-`) or in the environment variable shown.
#[derive(clap::Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of these options; command line and environment win over it.
    #[arg(long, env = "RIGHTS_SERVER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Directory for the server keys, the SQLite database and the mail outbox
    /// [default: $XDG_DATA_HOME/rights-server].
    #[arg(long, env = "RIGHTS_SERVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database: a SQLite file path, or a postgres://user:pass@host/db URL for several replicas
    /// [default: rights.db in the data directory].
    #[arg(long, env = "RIGHTS_SERVER_DATABASE")]
    pub database: Option<String>,
    /// Address and port to listen on; plain HTTP is only allowed on loopback [default: 127.0.0.1:7443].
    #[arg(long, env = "RIGHTS_SERVER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// URL clients use to reach this server (put in mails) [default: derived from --listen].
    #[arg(long, env = "RIGHTS_SERVER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PEM certificate chain for HTTPS (required for a non-loopback --listen).
    #[arg(long, env = "RIGHTS_SERVER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "RIGHTS_SERVER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// SMTP relay host; without it, mail is written as .eml files to <data-dir>/outbox.
    #[arg(long, env = "RIGHTS_SERVER_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 25 for none, 587 for starttls, 465 for tls].
    #[arg(long, env = "RIGHTS_SERVER_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// SMTP user name (with --smtp-password).
    #[arg(long, env = "RIGHTS_SERVER_SMTP_USER")]
    pub smtp_user: Option<String>,
    /// SMTP password (prefer the environment variable to the command line).
    #[arg(long, env = "RIGHTS_SERVER_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// SMTP transport security [default: starttls].
    #[arg(long, env = "RIGHTS_SERVER_SMTP_TLS", value_enum)]
    pub smtp_tls: Option<SmtpTls>,
    /// Sender address of the server's mail [default: rights@<host of public url>].
    #[arg(long, env = "RIGHTS_SERVER_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Seconds an address waits once its 5 free code guesses are used, and
    /// between its first two code mails; each later wait doubles, up to 15 minutes [default: 30].
    #[arg(long, env = "RIGHTS_SERVER_SIGNIN_BACKOFF")]
    pub signin_backoff: Option<i64>,
    /// Requests to the auth endpoints one client IP may make per minute [default: 30].
    #[arg(long, env = "RIGHTS_SERVER_AUTH_PER_MINUTE")]
    pub auth_per_minute: Option<i64>,
    /// Days the server keeps a protected file it mailed, for the mail's
    /// viewer link (0: keep none) [default: 30]. Revoking deletes it.
    #[arg(long, env = "RIGHTS_SERVER_SENT_RETENTION_DAYS")]
    pub sent_retention_days: Option<i64>,
    /// Largest protected file the server mails, in bytes [default: 26214400].
    #[arg(long, env = "RIGHTS_SERVER_SENT_MAX_BYTES")]
    pub sent_max_bytes: Option<usize>,
    /// Most days a licence this server issues stays usable offline, whatever
    /// a file's policy asks: bounds how long a revoked recipient keeps
    /// reading [default: 30].
    #[arg(long, env = "RIGHTS_SERVER_MAX_OFFLINE_DAYS",
          value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub max_offline_days: Option<u32>,
    /// Seconds a device certificate (the server's word that a device's
    /// writer key is its account's) stays valid: a device removed from
    /// its account can sign versions readers accept until its last one
    /// ends. Devices renew theirs once half of it is gone, so a device
    /// away from the server for longer cannot save [default: 604800, 7 days].
    #[arg(long, env = "RIGHTS_SERVER_DEVICE_CERTIFICATE_LIFETIME",
          value_parser = clap::value_parser!(i64).range(1..=31_536_000))]
    pub device_certificate_lifetime: Option<i64>,
    /// Length in seconds of the window in which the mail limits below
    /// count (at most 30 days) [default: 3600].
    #[arg(long, env = "RIGHTS_SERVER_MAIL_WINDOW",
          value_parser = clap::value_parser!(i64).range(1..=2_592_000))]
    pub mail_window: Option<i64>,
    /// Share invitations and sent files one account may make the server
    /// mail per window; a request over it is refused whole with 429 [default: 100].
    #[arg(long, env = "RIGHTS_SERVER_MAILS_PER_SENDER",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub mails_per_sender: Option<i64>,
    /// Share invitations and sent files one address may receive per
    /// window, from all accounts together [default: 10].
    #[arg(long, env = "RIGHTS_SERVER_MAILS_PER_RECIPIENT",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub mails_per_recipient: Option<i64>,
    /// Content keys wrapped to device keys kept in memory, so that a device
    /// asking again for a licence of the same content costs no RSA
    /// operation (0: wrap afresh for every licence) [default: 10000].
    #[arg(long, env = "RIGHTS_SERVER_WRAP_CACHE")]
    pub wrap_cache: Option<usize>,
    /// Serve `/metrics` on the main address to requests bearing this token
    /// (`Authorization: Bearer TOKEN`); without it (and without
    /// --metrics-listen) the counters are not served at all.
    #[arg(long, env = "RIGHTS_SERVER_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Also serve `/metrics`, without a token, in plain HTTP on this
    /// address (loopback or an internal network only).
    #[arg(long, env = "RIGHTS_SERVER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl ServeArgs {
    /// Fills unset options from the `--config` file, if any.
    pub fn merge_file(mut self) -> anyhow::Result<Self> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read the config file {}: {e}", path.display()))?;
        let f: ServeArgs =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("the config file {} is invalid: {e}", path.display()))?;
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = f.$f; } )* };
        }
        fill!(
            data_dir,
            database,
            listen,
            public_url,
            tls_cert,
            tls_key,
            smtp_host,
            smtp_port,
            smtp_user,
            smtp_password,
            smtp_tls,
            mail_from,
            signin_backoff,
            auth_per_minute,
            sent_retention_days,
            sent_max_bytes,
            max_offline_days,
            device_certificate_lifetime,
            mail_window,
            mails_per_sender,
            mails_per_recipient,
            wrap_cache,
            metrics_token,
            metrics_listen
        );
        Ok(self)
    }

    /// The data directory, created if missing.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let d = match &self.data_dir {
            Some(d) => d.clone(),
            None => directories::BaseDirs::new()
                .map(|b| b.data_dir().join("rights-server"))
                .ok_or_else(|| anyhow::anyhow!("no home directory; pass --data-dir"))?,
        };
        std::fs::create_dir_all(&d).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
        Ok(d)
    }

    /// The database URL or path.
    pub fn database(&self, data_dir: &Path) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| data_dir.join("rights.db").display().to_string())
    }

    /// The listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7443)))
    }
}
