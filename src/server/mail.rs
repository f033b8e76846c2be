//! Outgoing mail: one-time codes and share invitations, over SMTP with
//! lettre, or into an outbox folder when no SMTP relay is configured.

use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{ServeArgs, SmtpTls};

/// Where mail goes.
pub enum Mailer {
    /// A real relay.
    Smtp {
        /// The transport (pooled connections).
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Sender.
        from: Mailbox,
    },
    /// `.eml` files in a folder, for setups without mail.
    Outbox {
        /// The folder.
        dir: PathBuf,
        /// Sender.
        from: Mailbox,
    },
}

impl Mailer {
    /// Builds the mailer from the options.
    pub fn from_args(a: &ServeArgs, data_dir: &std::path::Path, public_host: &str) -> anyhow::Result<Self> {
        let from_s = a.mail_from.clone().unwrap_or_else(|| format!("rights@{public_host}"));
        let from: Mailbox = from_s
            .parse()
            .or_else(|_| "rights@localhost.localdomain".parse())
            .map_err(|e| anyhow::anyhow!("--mail-from '{from_s}' is not an address: {e}"))?;
        let Some(host) = &a.smtp_host else {
            let dir = data_dir.join("outbox");
            std::fs::create_dir_all(&dir)?;
            return Ok(Self::Outbox { dir, from });
        };
        let tls = a.smtp_tls.unwrap_or(SmtpTls::Starttls);
        let mut b = match tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        };
        b = b.port(a.smtp_port.unwrap_or(match tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }));
        if let (Some(u), Some(p)) = (&a.smtp_user, &a.smtp_password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        b = b.timeout(Some(std::time::Duration::from_secs(20)));
        Ok(Self::Smtp {
            transport: b.build(),
            from,
        })
    }

    fn from(&self) -> &Mailbox {
        match self {
            Self::Smtp { from, .. } | Self::Outbox { from, .. } => from,
        }
    }

    /// Sends a plain-text mail; errors are for the caller to log or report.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let msg = Message::builder()
            .from(self.from().clone())
            .to(to.parse()?)
            .subject(subject)
            .body(body)?;
        match self {
            Self::Smtp { transport, .. } => {
                transport.send(msg).await?;
                tracing::info!(to, subject, "mail sent");
            }
            Self::Outbox { dir, .. } => {
                let name = format!(
                    "{}-{}.eml",
                    crate::policy::now(),
                    hex::encode(crate::crypto::random_array::<6>())
                );
                let path = dir.join(name);
                tokio::fs::write(&path, msg.formatted()).await?;
                tracing::info!(to, subject, path = %path.display(), "no SMTP configured: mail written to the outbox");
            }
        }
        Ok(())
    }
}

/// Text of the code mail.
pub fn code_mail(code: &str, signup: bool, server: &str) -> (String, String) {
    let (subject, what) = if signup {
        ("Your rightsfs sign-up code", "finish signing up")
    } else {
        ("Your rightsfs login code", "log in")
    };
    let body = format!(
        "Your code:\r\n\r\n    {code}\r\n\r\nEnter it to {what} at {server}. It expires in 10 minutes and works once.\r\n\
         If you did not ask for it, ignore this mail.\r\n"
    );
    (subject.to_string(), body)
}

/// Text of a share invitation.
pub fn invitation_mail(owner: &str, rights: &str, content_id: &str, server: &str) -> (String, String) {
    (
        format!("{owner} shared a protected file with you"),
        format!(
            "{owner} gave you these rights on a protected file: {rights}.\r\n\r\n\
             File id: {content_id}\r\n\r\n\
             To read it in your browser, open {server}/app/ and choose the file you were sent.\r\n\r\n\
             To open it with the rights app, install rightsfs and run:\r\n\r\n    rights signup --server {server} YOUR-ADDRESS\r\n\r\n\
             (or `rights login` if you already have an account), then open the file you were sent.\r\n"
        ),
    )
}
