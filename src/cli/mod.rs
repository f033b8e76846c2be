//! The `rights` command line: parses arguments, runs one command, prints
//! its result (text or `--json`) and turns any failure into one line on
//! stderr and a non-zero exit code.

mod args;
mod auth;
mod ctx;
mod file_policy;
mod files;
mod info;
mod mount;
mod output;
mod policy;
mod protect;
mod send;
mod share;
mod target;

pub use args::{Cli, Command};

use clap::{CommandFactory, Parser};

/// Runs `rights` with the process arguments; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("rights: {}", msg.replace('\n', " "));
            1
        }
    }
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut ctx = ctx::Ctx::new(cli.keystore, cli.json)?;
    match cli.command {
        Command::Signup(a) => auth::login(&mut ctx, a, true),
        Command::Login(a) => auth::login(&mut ctx, a, false),
        Command::Logout { forget_device, force } => auth::logout(&mut ctx, forget_device, force),
        Command::Whoami => auth::whoami(&ctx),
        Command::Devices { remove } => auth::devices(&ctx, remove),
        Command::Protect {
            paths,
            to,
            offline_days,
            expires,
            recursive,
            shred,
        } => protect::protect(
            &ctx,
            &paths,
            &to,
            offline_days,
            expires.as_deref(),
            protect::How { recursive, shred },
        ),
        Command::Cat { file, salvage: false } => protect::cat(&ctx, &file),
        Command::Cat { file, salvage: true } => protect::salvage(&ctx, &file),
        Command::Unprotect { file } => protect::unprotect(&ctx, &file),
        Command::Info { file } => info::info(&ctx, &file),
        Command::Share { file, to } => share::share(&ctx, &file, &to),
        Command::Unshare { file, from } => share::unshare(&ctx, &file, &from),
        Command::Send {
            file,
            to,
            message,
            message_file,
            eml_out,
            smtp,
        } => {
            let message = match message_file {
                Some(f) => Some(
                    std::fs::read_to_string(&f)
                        .map_err(|e| anyhow::anyhow!("cannot read the message file {}: {e}", f.display()))?,
                ),
                None => message,
            };
            send::send(&ctx, &file, &to, message.as_deref(), eml_out.as_deref(), smtp)
        }
        Command::Revoke { file } => share::revoke(&ctx, &file),
        Command::Track { file, all: _, format } => info::track(&ctx, file.as_deref(), format),
        Command::List { shared } => info::list(&ctx, shared),
        Command::Status => info::status(&ctx),
        Command::Sync => share::sync(&ctx),
        Command::Mount {
            source,
            mountpoint,
            daemon,
            default_policy,
            offline_days,
            threads,
            busy_poll_us,
            tag_memory_mib,
            max_inodes,
            allow_other,
        } => mount::mount(
            &ctx,
            mount::MountArgs {
                source: &source,
                mountpoint: &mountpoint,
                daemon,
                default_policy: &default_policy,
                offline_days,
                threads,
                busy_poll: std::time::Duration::from_micros(busy_poll_us),
                tag_memory: (tag_memory_mib as usize) << 20,
                max_inodes,
                allow_other,
            },
        ),
        Command::Unmount { mountpoint, force } => mount::unmount(&ctx, &mountpoint, force),
        Command::Policy(args::PolicyCommand::Set { dir, to, offline_days }) => {
            policy::set(&ctx, &dir, &to, offline_days)
        }
        Command::Policy(args::PolicyCommand::Show { dir }) => policy::show(&ctx, &dir),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rights", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Writes a user-requested output file (not secret) without replacing an
/// existing one.
fn paths_write(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_examples_in_its_help() {
        let mut cmd = Cli::command();
        cmd.build();
        for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("Example"),
                "`rights {}` help has no example",
                sub.get_name()
            );
        }
        Cli::command().debug_assert();
    }
}
