//! Outgoing mail: one-time codes and share invitations, over SMTP with
//! lettre, or into an outbox folder when no SMTP relay is configured.

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
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
            .message_id(None)
            .singlepart(SinglePart::plain(body))?;
        self.deliver(msg, to, subject).await
    }

    /// Sends a protected file for `sender`: from the server's address under
    /// the sender's name, replies going to the sender, a plain-text and an
    /// HTML part, and the file attached.
    pub async fn send_file(
        &self,
        to: &str,
        sender: &str,
        mail: &ShareMail,
        files: &[(&str, &[u8])],
    ) -> anyhow::Result<()> {
        let from = Mailbox::new(Some(format!("{sender} via rightsfs")), self.from().email.clone());
        let mut parts =
            MultiPart::mixed().multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()));
        for (name, bytes) in files {
            parts = parts.singlepart(
                Attachment::new(name.to_string()).body(bytes.to_vec(), ContentType::parse("application/octet-stream")?),
            );
        }
        let msg = Message::builder()
            .from(from)
            .reply_to(sender.parse()?)
            .to(to.parse()?)
            .subject(mail.subject.as_str())
            .message_id(None)
            .multipart(parts)?;
        self.deliver(msg, to, &mail.subject).await
    }

    async fn deliver(&self, msg: Message, to: &str, subject: &str) -> anyhow::Result<()> {
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
                // The mail may hold a live sign-in code: only the server's user reads it.
                let mut f = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .await?;
                tokio::io::AsyncWriteExt::write_all(&mut f, &msg.formatted()).await?;
                f.sync_all().await?;
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

/// What a share invitation says.
pub struct Invitation<'a> {
    /// Who shared.
    pub owner: &'a str,
    /// The file's name as the owner calls it, when the client sent it.
    pub file_name: Option<&'a str>,
    /// The rights given.
    pub rights: &'a str,
    /// When the grant ends (RFC 3339), if it does.
    pub until: Option<&'a str>,
    /// The content id (hex).
    pub content_id: &'a str,
    /// The server's public URL.
    pub server: &'a str,
}

/// Subject and text of a share invitation: which file, from whom, with
/// which rights until when, and how to open it.
pub fn invitation_mail(i: &Invitation<'_>) -> (String, String) {
    let Invitation {
        owner,
        file_name,
        rights,
        until,
        content_id,
        server,
    } = i;
    let what = file_name.map_or_else(|| "a protected file".to_string(), |n| format!("\"{n}\""));
    let until = until.map_or_else(|| "no end date".to_string(), |u| format!("until {u}"));
    let file = file_name.map_or_else(|| "FILE.rights".to_string(), |n| format!("\"{n}\""));
    (
        format!("{owner} shared {what} with you"),
        format!(
            "{owner} shared {what} with you.\r\n\r\n\
             Your rights: {rights} ({until}).\r\n\
             File id: {content_id}\r\n\r\n\
             Ask {owner} for the file if it did not reach you. To read it in your browser, open\r\n\
             {server}/app/ and choose the file. To open it on a computer, install rightsfs and run:\r\n\r\n\
             \x20   rights signup YOUR-ADDRESS --server {server}\r\n\
             \x20   rights cat {file}\r\n\r\n\
             (`rights login` instead of signup if you already have an account).\r\n"
        ),
    )
}

/// A sharing mail's subject and its two bodies.
pub struct ShareMail {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part (every inserted value escaped).
    pub html: String,
}

/// The mail that carries a shared file: who shared what, with which
/// rights until when, the viewer link (when the server keeps the file) and
/// how to get the app.
pub fn share_mail(
    sender: &str,
    file: &str,
    rights: &str,
    until: Option<&str>,
    link: Option<&str>,
    server: &str,
    message: Option<&str>,
) -> ShareMail {
    let until_text = until.map_or_else(|| "no end date".to_string(), |u| format!("until {u}"));
    let mut text = format!(
        "{sender} shared a protected file with you: {file}\r\n\r\n\
         Your rights: {rights} ({until_text}).\r\n\r\n"
    );
    let message_note = message
        .map(|m| format!("{sender} wrote you a message, protected like the file: {m} (the link shows it first)."));
    if let Some(n) = &message_note {
        text.push_str(&format!("{n}\r\n\r\n"));
    }
    if let Some(l) = link {
        text.push_str(&format!(
            "Read it in your browser (you will get a sign-in code by mail):\r\n\r\n    {l}\r\n\r\n"
        ));
    }
    text.push_str(&format!(
        "The file is attached. To open it on a computer, install rightsfs and run:\r\n\r\n    \
         rights signup --server {server} YOUR-ADDRESS\r\n\r\nthen open the attached file.\r\n"
    ));
    let e = html_escape;
    let mut html = format!(
        "<p>{} shared a protected file with you: <b>{}</b></p><p>Your rights: {} ({}).</p>",
        e(sender),
        e(file),
        e(rights),
        e(&until_text)
    );
    if let Some(n) = &message_note {
        html.push_str(&format!("<p>{}</p>", e(n)));
    }
    if let Some(l) = link {
        html.push_str(&format!(
            "<p><a href=\"{}\">Read it in your browser</a> (you will get a sign-in code by mail).</p>",
            e(l)
        ));
    }
    html.push_str(&format!(
        "<p>The file is attached. To open it on a computer, install rightsfs and run \
         <code>rights signup --server {} YOUR-ADDRESS</code>, then open the attached file.</p>",
        e(server)
    ));
    ShareMail {
        subject: format!("{sender} shared {file} with you"),
        text,
        html,
    }
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_mail_escapes_what_it_quotes_in_html() {
        let m = share_mail(
            "alice@example.com",
            "<img src=x onerror=alert(1)>.rights",
            "view",
            None,
            Some("https://r.example/app/#file=00&message=11"),
            "https://r.example",
            Some("message.txt.rights"),
        );
        assert!(!m.html.contains("<img"), "{}", m.html);
        assert!(m.html.contains("&lt;img src=x onerror=alert(1)&gt;.rights"));
        assert!(
            m.html
                .contains("href=\"https://r.example/app/#file=00&amp;message=11\"")
        );
        assert!(
            m.text.contains("<img src=x onerror=alert(1)>.rights"),
            "the text part is plain"
        );
        assert!(m.text.contains("the link shows it first"));
    }
}
