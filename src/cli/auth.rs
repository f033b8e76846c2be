//! signup, login, logout, whoami, devices.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, bail};

use super::ctx::{Ctx, timeout};
use super::output;
use crate::api::AuthVerify;
use crate::client::{ACCESS_TOKEN, Api, ClientError, DEVICE_KEY, KeystoreKind, REFRESH_TOKEN};
use crate::crypto::DeviceKeyPair;
use crate::policy::Email;

fn decode_key(s: &str, what: &str) -> anyhow::Result<String> {
    use base64::Engine;
    let t = s.trim();
    let bytes = hex::decode(t)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .or_else(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok())
        .filter(|b| b.len() == 32)
        .with_context(|| format!("the server's {what} is not a 32-byte key"))?;
    Ok(hex::encode(bytes))
}

fn read_code(email: &Email) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Enter the code sent to {email}: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("reading the code")?;
    let code = line.trim().to_string();
    if code.is_empty() {
        bail!("no code entered: check your mailbox for the code and run the command again (or pass --code)");
    }
    Ok(code)
}

/// The device this machine is signed in as on `server` for `email`, with
/// its key: a new sign-in keeps it instead of adding another device.
fn current_device(ctx: &Ctx, email: &Email, server: &str) -> Option<(String, DeviceKeyPair)> {
    let c = &ctx.config;
    if c.email.as_ref() != Some(email) || c.server_url.as_deref() != Some(server) {
        return None;
    }
    let id = c.device_id.clone()?;
    let der = ctx.keystore.get(DEVICE_KEY).ok()??;
    Some((id, DeviceKeyPair::from_pkcs8_der(&der).ok()?))
}

/// What removing a device means for the versions it saved (readers
/// refuse every version a removed device signed).
const REMOVED_VERSIONS: &str = "Versions last saved by that device are no longer accepted by any reader, whatever \
     time they claim: save again from another device the files it saved last that you want to keep.";

/// Removes, best effort, the device another address had on this machine,
/// before its secrets are overwritten: it would be a ghost otherwise.
fn retire_other_account(ctx: &Ctx) -> Option<String> {
    let id = ctx.config.device_id.clone()?;
    let s = ctx.session().ok()?;
    s.remove_device(&id).err().map(|e| e.to_string())
}

/// Checks that the keystore can keep this device's secrets. Where no
/// desktop keyring answers and no store was asked for, the sealed file
/// takes its place, saying so: a headless machine signs in without knowing
/// the option, and its user learns where the keys went and why.
fn choose_keystore(ctx: &mut Ctx) -> anyhow::Result<()> {
    match ctx.keystore.check_usable() {
        Err(ClientError::NoSecretService(reason)) if !ctx.keystore_chosen => {
            eprintln!(
                "warning: no desktop keyring (Secret Service) can keep this device's keys here ({reason}); \
                 they go to a passphrase-sealed file instead ({}). To keep them in a desktop keyring, sign in \
                 again from a desktop session or after starting and unlocking a keyring daemon (e.g. \
                 `gnome-keyring-daemon --unlock`); `--keystore file` chooses the file without this warning.",
                ctx.paths.credential_file().display()
            );
            ctx.switch_keystore(KeystoreKind::File);
            Ok(ctx.keystore.check_usable()?)
        }
        Err(ClientError::NoSecretService(reason)) => bail!(
            "the desktop keyring (Secret Service) cannot keep this device's keys ({reason}); sign in from a \
             desktop session or start and unlock a keyring daemon (e.g. `gnome-keyring-daemon --unlock`), or \
             use `--keystore file` for a passphrase-sealed file"
        ),
        r => Ok(r?),
    }
}

/// `rights signup` / `rights login`: mail a code (unless one is given),
/// verify it, register this device (or keep the one this machine already
/// is) and keep the secrets in the keystore.
pub fn login(ctx: &mut Ctx, a: super::args::AuthArgs, signup: bool) -> anyhow::Result<()> {
    let verb = if signup { "signup" } else { "login" };
    let email = Email::parse(&a.email)?;
    let server = match a.server.or_else(|| ctx.config.server_url.clone()) {
        Some(s) => s,
        None => bail!("no server known yet: add --server https://your-rights-server"),
    };
    let api = Api::new(&server, timeout())?;
    // Fail before mailing a code if the secrets could not be kept.
    choose_keystore(ctx)?;
    let keys = api.server_key()?;
    let kem = decode_key(&keys.kem_public_key, "wrapping key")?;
    let sig = decode_key(&keys.signing_public_key, "signing key")?;
    let other = ctx.config.email.clone().filter(|o| *o != email);
    if let Some(o) = &other {
        eprintln!(
            "warning: this machine is signed in as {o}; signing in as {email} replaces that \
             ({o}'s device here is removed from the server). {REMOVED_VERSIONS}"
        );
    }
    if a.code.is_none() || a.send_code {
        api.start_sign_in(email.as_str(), signup)?;
        if a.send_code {
            // The second step finds the server here.
            ctx.config.server_url = Some(api.base().to_string());
            ctx.save_config()?;
            if ctx.json {
                output::json(&serde_json::json!({ "code_sent_to": email, "server": api.base() }));
            } else {
                println!("A code was sent to {email}; finish with `rights {verb} {email} --code CODE`.");
            }
            return Ok(());
        }
        if !ctx.json {
            eprintln!("A code was sent to {email}.");
        }
    }
    let current = current_device(ctx, &email, api.base());
    let (replace, device) = match current {
        Some((id, key)) => (Some(id), key),
        None => (None, DeviceKeyPair::generate()?),
    };
    let device_name = a.device_name.clone().unwrap_or_else(default_device_name);
    let typed = a.code.is_none();
    let mut code = match a.code {
        Some(c) => c,
        None => read_code(&email)?,
    };
    use base64::Engine;
    let public = base64::engine::general_purpose::STANDARD.encode(device.public().to_der());
    let pair = loop {
        let r = api.verify(&AuthVerify {
            email: email.to_string(),
            code: code.trim().to_string(),
            device_name: device_name.clone(),
            device_public_key: public.clone(),
            replace_device: replace.clone(),
            reader_only: false,
        });
        match r {
            Ok(p) => break p,
            // A typo costs one try, not the command: ask again while the
            // server still accepts this code.
            Err(ClientError::Server {
                status: 401,
                code: c,
                message,
            }) if typed && c == "invalid_code" => {
                eprintln!("{message}");
                code = read_code(&email)?;
            }
            Err(e) => {
                return Err(match e.server_code() {
                    Some((400 | 401 | 403 | 422, _)) => {
                        anyhow::anyhow!(
                            "the code was not accepted ({e}); run `rights {verb} {email}` again for a new code"
                        )
                    }
                    _ => e.into(),
                });
            }
        }
    };
    let refresh = pair.refresh_token;
    let access = crate::client::access_entry(&pair.access_token, &pair.access_expires_at);
    let device_id = pair.device_id;
    if other.is_some()
        && let Some(w) = retire_other_account(ctx)
    {
        eprintln!("warning: the previous account's device could not be removed ({w})");
    }
    let der = device.to_pkcs8_der()?;
    ctx.keystore.set_many(&[
        (DEVICE_KEY, der.as_slice()),
        (REFRESH_TOKEN, refresh.as_bytes()),
        (ACCESS_TOKEN, access.as_bytes()),
    ])?;
    let c = &mut ctx.config;
    c.server_url = Some(api.base().to_string());
    c.email = Some(email.clone());
    c.device_id = Some(device_id.clone());
    c.server_kem_key = Some(kem);
    c.server_signing_key = Some(sig);
    ctx.save_config()?;
    // Every version this device saves is signed with its writer key: get
    // that key certified now, while online (it is kept in the data folder).
    let certified = crate::client::licensing(
        &ctx.paths,
        &ctx.config,
        ctx.keystore.clone(),
        super::ctx::timeout(),
        true,
    )
    .map_err(anyhow::Error::from)
    .and_then(|l| l.writer().map(drop).map_err(anyhow::Error::from));
    if let Err(e) = certified {
        eprintln!("warning: {e}; it is asked for again when this device first saves a file");
    }
    if ctx.json {
        output::json(&serde_json::json!({ "email": email, "device_id": device_id, "server": api.base() }));
    } else {
        println!("Logged in as {email} on {} (device {device_id}).", api.base());
    }
    Ok(())
}

fn default_device_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "device".into())
}

/// Registers what is queued while the session still works; returns how
/// many files stay unregistered.
fn register_queued(ctx: &Ctx) -> usize {
    let q = crate::client::RegistrationQueue::new(&ctx.paths);
    let Ok(quiet) = ctx.clone_for_quiet() else {
        return q.waiting().len();
    };
    for (id, pl) in q.list() {
        if let Ok(pl) = pl {
            let _ = super::protect::register_or_queue(&quiet, &id, &pl);
        }
    }
    q.waiting().len()
}

/// `rights logout`: registers what it can first; files still unregistered
/// stay queued (warned about) unless `force`; `forget_device` removes the
/// device from the account too.
pub fn logout(ctx: &mut Ctx, forget_device: bool, force: bool) -> anyhow::Result<()> {
    let email = ctx.config.me()?.clone();
    // Revoke and remove nothing while the keys cannot be removed too.
    if let Err(e @ ClientError::NoSecretService(_)) = ctx.keystore.get(DEVICE_KEY) {
        return Err(e.into());
    }
    super::mount::unmount_all(ctx)?;
    let unregistered = register_queued(ctx);
    if unregistered > 0 && force {
        let _ = std::fs::remove_dir_all(ctx.paths.queue_dir());
        eprintln!("warning: dropped {unregistered} file(s) protected here that the server never registered");
    } else if unregistered > 0 {
        eprintln!(
            "warning: {unregistered} file(s) protected here are not registered with the server yet; they stay \
             queued and are registered after your next `rights login {email}` (`rights logout --force` drops them)"
        );
    }
    let mut warning = None;
    if let Ok(session) = ctx.session() {
        let r = match (forget_device, &ctx.config.device_id) {
            (true, Some(id)) => session.remove_device(id),
            _ => match session.refresh_token() {
                Ok(Some(rt)) => session.api().logout(&rt),
                _ => Ok(()),
            },
        };
        if let Err(e) = r {
            warning = Some(e.to_string());
        }
    }
    if let Ok(l) = ctx.licensing() {
        l.forget_all()?;
    }
    let _ = std::fs::remove_dir_all(ctx.paths.licence_cache());
    ctx.keystore.wipe()?;
    ctx.config.email = None;
    ctx.config.device_id = None;
    ctx.save_config()?;
    if let Some(w) = &warning {
        eprintln!("warning: the server could not revoke this session ({w}); local keys were wiped anyway");
    }
    if ctx.json {
        output::json(&serde_json::json!({
            "logged_out": email, "device_removed": forget_device && warning.is_none(),
            "unregistered_kept": if force { 0 } else { unregistered },
        }));
    } else if forget_device && warning.is_none() {
        println!(
            "Logged out {email}; this device was removed from the account, and its keys and cached licences from here."
        );
        println!("{REMOVED_VERSIONS}");
    } else {
        println!("Logged out {email}; keys and cached licences removed from this device.");
    }
    Ok(())
}

/// `rights whoami`.
pub fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let email = ctx.config.me()?;
    let server = ctx.config.server()?;
    let device = ctx.config.device_id.clone().unwrap_or_default();
    let me = ctx.session().and_then(|s| s.me());
    let online = match &me {
        Ok(_) => "online".to_string(),
        Err(ClientError::Unreachable { .. }) => "offline".to_string(),
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    if ctx.json {
        output::json(&serde_json::json!({
            "email": email, "server": server, "device_id": device,
            "keystore": ctx.config.keystore, "server_state": online, "account": me.ok(),
        }));
    } else {
        println!("{email}");
        println!("server:   {server} ({online})");
        println!("device:   {device}");
        println!("keystore: {}", keystore_name(ctx));
    }
    Ok(())
}

/// Where this device's secrets are, in words.
pub fn keystore_name(ctx: &Ctx) -> String {
    match ctx.config.keystore {
        KeystoreKind::Keyring => "desktop keyring (Secret Service)".into(),
        KeystoreKind::File => format!("passphrase-sealed file {}", ctx.paths.credential_file().display()),
    }
}

/// `rights devices [--remove ID]`.
pub fn devices(ctx: &Ctx, remove: Option<String>) -> anyhow::Result<()> {
    let s = ctx.session()?;
    if let Some(id) = remove {
        s.remove_device(&id)?;
        // Readers here refuse that device's versions from now on.
        let listed = ctx
            .licensing()
            .map_err(|e| e.to_string())
            .and_then(|l| l.refresh_removed_devices().map_err(|e| e.to_string()));
        if let Err(e) = &listed {
            eprintln!(
                "warning: the list of removed devices could not be fetched now ({e}); readers here fetch it later"
            );
        }
        if ctx.json {
            output::json(&serde_json::json!({ "removed": id, "versions_refused": true }));
        } else {
            println!("Removed device {id}.");
            println!("{REMOVED_VERSIONS}");
        }
        return Ok(());
    }
    let list = s.devices()?;
    if ctx.json {
        output::json(&list);
        return Ok(());
    }
    let mine = ctx.config.device_id.clone().unwrap_or_default();
    let rows: Vec<Vec<String>> = list
        .into_iter()
        .map(|d| {
            let here = if d.id == mine { "*" } else { "" };
            // A browser's reader-only key opens files but never signs a
            // policy: worth telling apart from a full device.
            let kind = if d.reader_only { "reader" } else { "device" };
            vec![
                format!("{}{here}", d.id),
                d.name,
                kind.to_string(),
                d.created_at,
                d.last_seen,
            ]
        })
        .collect();
    output::table(&["ID", "NAME", "KIND", "CREATED", "LAST SEEN"], &rows);
    Ok(())
}
