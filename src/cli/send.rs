//! send: protect for the recipients if needed, then have the server mail
//! the protected file (it grants `view` to recipients who hold nothing and
//! links the mail to its web viewer), or mail it through the user's own
//! SMTP settings, or write the mail to an .eml file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::ctx::Ctx;
use super::files::{is_protected, open_protected, protected_name};
use super::output;
use crate::api::SendFile;
use crate::policy::{Email, Grant, Rights, now};

/// `rights send`.
pub fn send(
    ctx: &Ctx,
    file: &Path,
    to: &[String],
    message: Option<&str>,
    eml_out: Option<&Path>,
    own_smtp: bool,
) -> anyhow::Result<()> {
    let me = ctx.config.me()?.clone();
    let recipients = to.iter().map(|s| Email::parse(s)).collect::<Result<Vec<_>, _>>()?;
    if eml_out.is_none() && !own_smtp {
        return by_server(ctx, file, &recipients, message);
    }
    if eml_out.is_none() && ctx.config.smtp.is_none() {
        bail!(
            "no [smtp] section in config.toml: add host/port/from there, drop --smtp to let the server mail it, or use --eml-out FILE.eml"
        );
    }
    let protected = protect_if_plain(ctx, file, recipients.as_slice())?;
    if protected == file {
        let (_, h) = open_protected(file)?;
        // The grants are sealed in the file: who already holds one is known
        // from the owner copy or the server.
        let policy = super::file_policy::known_policy(ctx, &h)?;
        let missing: Vec<Grant> = recipients
            .iter()
            .filter(|r| policy.rights_for(r, now()).is_empty())
            .map(|r| Grant {
                to: crate::policy::Principal::User(r.clone()),
                rights: Rights::parse("view").expect("view is a right"),
                expires: None,
            })
            .collect();
        if !missing.is_empty() {
            super::share::add_grants(ctx, file, &missing)?;
        }
    }
    let (data, name) = read_attachment(&protected)?;
    let from_addr = ctx
        .config
        .smtp
        .as_ref()
        .and_then(|s| s.from.clone())
        .unwrap_or_else(|| me.to_string());
    let from: Mailbox = from_addr.parse().context("the [smtp] from address is not valid")?;
    let text = format!(
        "{}{me} sent you a protected file, {name}.\n\nTo open it, install rightsfs and run:\n  \
         rights signup YOUR-EMAIL --server {}\n  rights cat {name}\n",
        message.map(|m| format!("{m}\n\n")).unwrap_or_default(),
        ctx.config.server()?
    );
    let mail_to = |to: &[Email]| -> anyhow::Result<Message> {
        let mut b = Message::builder()
            .from(from.clone())
            .subject(format!("Protected file: {name}"))
            .message_id(None);
        for r in to {
            b = b.to(r.as_str().parse().context("recipient address")?);
        }
        b.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(text.clone()))
                .singlepart(Attachment::new(name.clone()).body(
                    data.clone(),
                    ContentType::parse("application/octet-stream").expect("static content type"),
                )),
        )
        .context("building the mail")
    };
    if let Some(out) = eml_out {
        // A draft the user sends themselves, so it names every recipient.
        super::paths_write(out, &mail_to(&recipients)?.formatted())?;
        if ctx.json {
            output::json(&serde_json::json!({ "file": protected, "eml": out }));
        } else {
            println!("Wrote {} (attachment {name})", out.display());
        }
        return Ok(());
    }
    let smtp = ctx.config.smtp.clone().expect("checked above");
    let mut t = match smtp.tls.as_deref().unwrap_or("starttls") {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).context("SMTP TLS setup")?,
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).context("SMTP TLS setup")?,
        other => bail!("[smtp] tls = \"{other}\" is not one of none, starttls, tls"),
    };
    t = t.port(smtp.port.unwrap_or(587)).timeout(Some(super::ctx::timeout()));
    let password = std::env::var("RIGHTS_SMTP_PASSWORD").ok().or(smtp.password.clone());
    if let (Some(u), Some(p)) = (smtp.username.clone(), password) {
        t = t.credentials(Credentials::new(u, p));
    }
    let transport = t.build();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // One mail per recipient: recipients do not learn of each other.
    for r in &recipients {
        let mail = mail_to(std::slice::from_ref(r))?;
        rt.block_on(transport.send(mail)).map_err(|e| {
            anyhow::anyhow!(
                "sending the mail to {r} via {} failed: {e}; check [smtp] in config.toml",
                smtp.host
            )
        })?;
    }
    if ctx.json {
        output::json(&serde_json::json!({ "file": protected, "sent_to": recipients }));
    } else {
        println!("Sent {name} to {}", to.join(", "));
    }
    Ok(())
}

/// Asks the server to mail the protected file (protecting a plain file
/// first). The server adds `view` for recipients who hold nothing, so the
/// local file is not touched.
fn by_server(ctx: &Ctx, file: &Path, recipients: &[Email], message: Option<&str>) -> anyhow::Result<()> {
    let protected = protect_if_plain(ctx, file, recipients)?;
    let (_, header) = open_protected(&protected)?;
    let (data, name) = read_attachment(&protected)?;
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let message_file = match message {
        Some(text) => Some(b64(&protect_message(ctx, text.as_bytes(), recipients)?)),
        None => None,
    };
    let body = SendFile {
        to: recipients.iter().map(Email::to_string).collect(),
        rights: None,
        name: name.clone(),
        file: b64(&data),
        message_file,
    };
    let out = ctx.session()?.send_file(&header.content_id(), &body)?;
    if ctx.json {
        output::json(&serde_json::json!({ "file": protected, "server": out }));
    } else {
        println!("The server mailed {name} to {}.", out.sent.join(", "));
        if let Some(until) = &out.kept_until {
            println!("Its link opens the file in a browser until {until} (or until you revoke it).");
        }
    }
    Ok(())
}

/// `file` if it is protected, else `file` protected for the recipients
/// (`view`), as NAME.rights beside it.
fn protect_if_plain(ctx: &Ctx, file: &Path, recipients: &[Email]) -> anyhow::Result<PathBuf> {
    if is_protected(file) {
        return Ok(file.to_path_buf());
    }
    let specs: Vec<String> = recipients.iter().map(|r| format!("{r}:view")).collect();
    let quiet = ctx.clone_for_quiet()?;
    super::protect::protect(&quiet, &[file.to_path_buf()], &specs, None, None, Default::default())?;
    Ok(protected_name(file))
}

/// The protected file's bytes and the name to attach them under.
fn read_attachment(protected: &Path) -> anyhow::Result<(Vec<u8>, String)> {
    let data = std::fs::read(protected).with_context(|| format!("cannot read {}", protected.display()))?;
    let name = protected
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file.rights".into());
    Ok((data, name))
}

/// The message protected as a file of its own, readable by the recipients
/// (`view`), built in memory (a memfd), so that neither the text nor the
/// server ever sees it in the clear. It is registered before it is sent.
fn protect_message(ctx: &Ctx, text: &[u8], recipients: &[Email]) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let mut policy = crate::policy::Policy::owner_only(
        ctx.config.me()?.clone(),
        ctx.config.offline_days.unwrap_or(super::protect::DEFAULT_OFFLINE_DAYS),
    );
    for r in recipients {
        policy.upsert_grant(Grant {
            to: crate::policy::Principal::User(r.clone()),
            rights: Rights::parse("view").expect("view is a right"),
            expires: None,
        });
    }
    let licensing = ctx.licensing()?;
    let new = licensing.new_content(policy, ctx.config.server()?, &ctx.config.server_kem()?)?;
    let fd = rustix::fs::memfd_create(c"rights-message", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(std::io::Error::from)
        .context("cannot make an in-memory file for the message")?;
    let mut mem = std::fs::File::from(fd);
    let mut pf = crate::format::ProtectedFile::create_from(mem.try_clone()?, new.fresh(licensing.writer()?, None)?)?;
    pf.write_at(text, 0)?;
    pf.sync()?;
    drop(pf);
    let mut out = Vec::new();
    mem.rewind()?;
    mem.read_to_end(&mut out)?;
    match super::protect::register_or_queue(ctx, &new.content_id, &new.licence)? {
        crate::client::Registration::Registered => Ok(out),
        _ => bail!("the server did not register the message; try again when it is reachable"),
    }
}
