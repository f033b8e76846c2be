//! The command-line grammar of `rights`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::KeystoreKind;

/// Protect files so that only the people you choose can open them.
#[derive(Debug, Parser)]
#[command(
    name = "rights",
    version,
    about,
    after_help = "Examples:\n  rights signup alice@example.com --server https://rights.example.com\n  \
                  rights protect report.odt --to bob@example.com:view,edit\n  rights cat report.odt.rights\n  \
                  rights track report.odt.rights"
)]
pub struct Cli {
    /// Where to keep this device's secrets (default: as chosen at sign-in; a sign-in uses the
    /// desktop keyring, or the sealed file where none answers).
    #[arg(long, global = true, value_enum)]
    pub keystore: Option<KeystoreKind>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by signup and login.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// Your email address.
    pub email: String,
    /// The licensing server (remembered in config.toml).
    #[arg(long, env = "RIGHTS_SERVER")]
    pub server: Option<String>,
    /// The code from the email: verifies a code already mailed, without
    /// asking for another (asked for on stdin if missing).
    #[arg(long, conflicts_with = "send_code")]
    pub code: Option<String>,
    /// Only mail a code and exit; finish with `--code CODE` (for scripts).
    #[arg(long)]
    pub send_code: bool,
    /// A name for this device (default: the host name).
    #[arg(long)]
    pub device_name: Option<String>,
}

const SIGNUP_HELP: &str = "Examples:\n  rights signup bob@example.com --server https://rights.example.com\n  \
    rights signup bob@example.com --keystore file      # a machine with no desktop keyring\n\n\
    The code is asked for on the terminal; a wrong one is asked for again while tries remain.\n\
    Scripts sign up in two steps (a pending code is verified, no new one is mailed):\n  \
    rights signup bob@example.com --server https://rights.example.com --send-code\n  \
    rights signup bob@example.com --code 12345678\n\n\
    Signing up again on a machine that is signed in keeps its device on the server.";

const LOGIN_HELP: &str = "Examples:\n  rights login alice@example.com --server https://rights.example.com\n  \
    rights login alice@example.com --send-code && rights login alice@example.com --code 12345678\n\n\
    Logging in again on this machine keeps its device on the server; logging in as another\n\
    address removes the previous address's device here.";

/// Every `rights` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account with a code mailed to you, and register this device.
    #[command(after_help = SIGNUP_HELP)]
    Signup(AuthArgs),
    /// Log in on this device with a code mailed to you.
    #[command(after_help = LOGIN_HELP)]
    Login(AuthArgs),
    /// Log out: revoke this device's session, forget cached licences and keys.
    #[command(
        after_help = "Examples:\n  rights logout\n  rights logout --forget-device   # also remove this device from the account\n\n\
                      Files protected here that the server has not registered yet stay queued (and are\n\
                      registered after the next login) unless --force."
    )]
    Logout {
        /// Also remove this device from the account on the server.
        #[arg(long)]
        forget_device: bool,
        /// Drop the queue of files not registered yet (they can then only be
        /// opened here through their owner slot, which logging out destroys).
        #[arg(long)]
        force: bool,
    },
    /// Show who is logged in on this device.
    #[command(after_help = "Examples:\n  rights whoami\n  rights whoami --json")]
    Whoami,
    /// List your devices, or remove one.
    #[command(after_help = "Examples:\n  rights devices\n  rights devices --remove 3f2a...")]
    Devices {
        /// Remove the device with this id.
        #[arg(long)]
        remove: Option<String>,
    },
    /// Protect files: NAME becomes NAME.rights, readable only as you allow.
    #[command(
        after_help = "Examples:\n  rights protect report.odt --to bob@example.com:view,edit --to carol@other.org:view:7d\n  \
                            rights protect -r ~/Confidential --offline-days 3\n  \
                            rights protect notes.txt --expires 2030-01-01"
    )]
    Protect {
        /// Files (or folders with -r) to protect.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Grant access: EMAIL[:RIGHTS[:EXPIRY]] (rights: view,edit,export,share; expiry: a duration
        /// 120s, 90m, 12h, 7d, 2w, or a date 2030-01-31).
        #[arg(long = "to", value_name = "SPEC")]
        to: Vec<String>,
        /// Days a licence works offline before the server is asked again (default 1; 0: always ask;
        /// the server may cap it lower).
        #[arg(long)]
        offline_days: Option<u32>,
        /// When the content expires for everyone but you (date, RFC 3339 time, or 120s/90m/12h/30d/2w).
        #[arg(long)]
        expires: Option<String>,
        /// Protect folders recursively (already protected files are skipped).
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Overwrite each original with zeros (synced) before removing it.
        /// Without it the original's blocks stay on the disk until reused.
        /// On SSDs and copy-on-write or snapshotting filesystems old copies
        /// may survive even this: protect files on an encrypted disk.
        #[arg(long)]
        shred: bool,
    },
    /// Print a protected file's content (needs the view right).
    #[command(after_help = "Examples:\n  rights cat report.odt.rights\n  rights cat notes.txt.rights | less")]
    Cat {
        /// The protected file.
        file: PathBuf,
        /// For a damaged file: write every block that still authenticates
        /// (damaged ranges as zeros) and list the damaged ranges on stderr.
        #[arg(long)]
        salvage: bool,
    },
    /// Remove protection: NAME.rights becomes NAME (needs export or owner).
    #[command(after_help = "Example:\n  rights unprotect report.odt.rights")]
    Unprotect {
        /// The protected file.
        file: PathBuf,
    },
    /// Show a protected file's owner, policy, your rights and licence state.
    #[command(
        after_help = "Examples:\n  rights info report.odt.rights\n  rights info report.odt       \
                            # a name this device knows\n  rights info report.odt.rights --json"
    )]
    Info {
        /// The protected file: a path, a file name this device knows, or a content id.
        file: PathBuf,
    },
    /// Give people access (on the server: the file is not rewritten).
    #[command(
        after_help = "Examples:\n  rights share report.odt.rights --to bob@example.com:view,edit\n  \
                            rights share report.odt.rights --to '*@example.com:view:30d'\n  \
                            rights share 3f2a9c...e1 --to bob@example.com      # by content id (rights list)"
    )]
    Share {
        /// The protected file: a path, a file name this device knows, or a content id.
        file: PathBuf,
        /// EMAIL[:RIGHTS[:EXPIRY]], repeatable.
        #[arg(long = "to", value_name = "SPEC", required = true)]
        to: Vec<String>,
    },
    /// Take access away from someone.
    #[command(after_help = "Example:\n  rights unshare report.odt.rights --from bob@example.com")]
    Unshare {
        /// The protected file: a path, a file name this device knows, or a content id.
        file: PathBuf,
        /// The address (or *@domain) to remove.
        #[arg(long)]
        from: String,
    },
    /// Protect a file for people (if needed) and have the server email it to them.
    #[command(after_help = "Examples:\n  rights send report.odt --to bob@example.com\n  \
                            rights send report.odt.rights --to bob@example.com --message 'Q3 numbers' --smtp\n  \
                            rights send report.odt.rights --to bob@example.com --eml-out report.eml")]
    Send {
        /// The file (plain or protected).
        file: PathBuf,
        /// Recipients (given the view right if they have none).
        #[arg(long = "to", value_name = "EMAIL", required = true)]
        to: Vec<String>,
        /// A message for the recipients. Through the server it travels
        /// protected like the file (an attachment the viewer shows first);
        /// with --smtp or --eml-out it is the mail's text.
        #[arg(long, conflicts_with = "message_file")]
        message: Option<String>,
        /// The message, from a file (see --message).
        #[arg(long, value_name = "FILE")]
        message_file: Option<PathBuf>,
        /// Write the mail to this .eml file instead of sending it.
        #[arg(long)]
        eml_out: Option<PathBuf>,
        /// Send through your own [smtp] settings in config.toml instead of
        /// asking the server to mail it.
        #[arg(long)]
        smtp: bool,
    },
    /// Revoke a file for everyone but you, at once on the server.
    #[command(after_help = "Examples:\n  rights revoke report.odt.rights\n  rights revoke report.odt")]
    Revoke {
        /// The protected file: a path, a file name this device knows, or a content id.
        file: PathBuf,
    },
    /// Show who opened a file you own, and when (opens that cached licences
    /// served offline included, once the reader's device reports them).
    #[command(
        after_help = "Examples:\n  rights track report.odt.rights\n  rights track report.odt --json\n  \
                            rights track --all --format csv > audit.csv   # every file you own"
    )]
    Track {
        /// The protected file: a path, a file name this device knows, or a content id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        file: Option<PathBuf>,
        /// The log of every file you own.
        #[arg(long)]
        all: bool,
        /// table (default), json, or csv (an export, with a header line).
        #[arg(long, value_enum, default_value = "table")]
        format: TrackFormat,
    },
    /// List content you own, or that others shared with you.
    #[command(after_help = "Examples:\n  rights list\n  rights list --shared --json")]
    List {
        /// Content others shared with you: owner, your rights, until when.
        #[arg(long, alias = "shared-with-me")]
        shared: bool,
    },
    /// Show pending registrations and cached licences.
    #[command(after_help = "Examples:\n  rights status\n  rights status --json")]
    Status,
    /// Register content that was protected offline.
    #[command(after_help = "Example:\n  rights sync")]
    Sync,
    /// Show a folder of protected files decrypted, for any program to use.
    #[command(
        long_about = "Mount SOURCE (a folder of NAME.rights files) at MOUNTPOINT, where every protected file \
                      appears as NAME, decrypted on read and encrypted on write, so editors, git, sqlite and \
                      file managers work on it unchanged. New files made there are protected at once: you own \
                      them, and the grants of the nearest .rights-policy file in SOURCE (or --default-policy) \
                      apply. Files you may only view are read-only; files you have no licence for fail to open \
                      with 'permission denied' and the log names the owner to ask. Only you can see the mount.",
        after_help = "Examples:\n  rights mount ~/Protected ~/Documents/Protected\n  \
                      rights mount ~/Shared ~/mnt/shared --daemon --default-policy '*@example.com:view'\n  \
                      rights unmount ~/mnt/shared\n\n\
                      A .rights-policy file (TOML) in SOURCE or any folder below it:\n  \
                      grants = [\"bob@example.com:view,edit\"]\n  offline_days = 3"
    )]
    Mount {
        /// The folder of protected files.
        source: PathBuf,
        /// An empty folder to show them in.
        mountpoint: PathBuf,
        /// Run in the background (log under the data folder's logs/).
        #[arg(long)]
        daemon: bool,
        /// Grant for files created in the mount: EMAIL[:RIGHTS[:EXPIRY]], repeatable.
        #[arg(long = "default-policy", value_name = "SPEC")]
        default_policy: Vec<String>,
        /// Offline validity (days) of licences for files created in the mount (default 1).
        #[arg(long)]
        offline_days: Option<u32>,
        /// FUSE worker threads.
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// Microseconds the last worker to answer keeps polling for the next
        /// request before sleeping: spares a wake-up per request when a
        /// program walks a tree (most on virtual machines); 0 turns it off,
        /// 1000 at most.
        #[arg(
            long,
            value_name = "US",
            default_value_t = crate::fs::DEFAULT_BUSY_POLL.as_micros() as u64,
            value_parser = clap::value_parser!(u64).range(0..=1000)
        )]
        busy_poll_us: u64,
        /// MiB of block tags kept in memory for files the mount has
        /// verified or written (16 bytes per 4 KiB block: 4 MiB covers
        /// 1 GiB of files), so that reopening them does not read them
        /// whole again; tags of files over 512 MiB are kept in the page
        /// cache instead. 0 keeps none.
        #[arg(
            long,
            value_name = "MIB",
            default_value_t = (crate::format::DEFAULT_TAG_MEMORY >> 20) as u64,
            value_parser = clap::value_parser!(u64).range(0..=4096)
        )]
        tag_memory_mib: u64,
        /// Files the mount keeps track of (about 150 bytes each) before it
        /// asks the kernel to forget those looked up longest ago; walking
        /// a bigger tree then costs no more memory. 0: no limit.
        #[arg(long, value_name = "N", default_value_t = crate::fs::DEFAULT_MAX_INODES)]
        max_inodes: usize,
        /// Let other local users use the mount (they would see plaintext;
        /// with the daemon run as root, what they create is theirs).
        #[arg(long)]
        allow_other: bool,
    },
    /// Unmount a folder mounted with `rights mount`, committing open files.
    #[command(
        after_help = "Examples:\n  rights unmount ~/mnt/shared\n  rights unmount --force ~/mnt/shared   \
                            # busy, or its daemon died"
    )]
    Unmount {
        /// The mount point.
        mountpoint: PathBuf,
        /// Detach even if busy, and stop a daemon that does not exit.
        #[arg(long)]
        force: bool,
    },
    /// Default grants of files created in a folder through the mount.
    #[command(
        subcommand,
        after_help = "Examples:\n  rights policy set ~/Protected/team --to bob@example.com:view,edit --offline-days 3\n  \
                            rights policy show ~/Protected/team"
    )]
    Policy(PolicyCommand),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  rights completions bash > ~/.local/share/bash-completion/completions/rights\n  \
                            rights completions zsh > ~/.zfunc/_rights"
    )]
    Completions {
        /// bash, zsh or fish.
        shell: clap_complete::Shell,
    },
}

/// `rights policy`.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Write the folder's `.rights-policy`, signed by this device: only
    /// such a file is used by your mounts (anyone who can write the folder
    /// could write an unsigned one).
    Set {
        /// The folder (in the source folder of a mount).
        dir: PathBuf,
        /// Grant access: EMAIL[:RIGHTS[:EXPIRY]].
        #[arg(long = "to", value_name = "SPEC")]
        to: Vec<String>,
        /// Days a new file's licence works offline.
        #[arg(long)]
        offline_days: Option<u32>,
    },
    /// Verify and print the folder's `.rights-policy`.
    Show {
        /// The folder.
        dir: PathBuf,
    },
}

/// How `rights track` prints the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TrackFormat {
    /// An aligned table.
    Table,
    /// A JSON array (as `--json`).
    Json,
    /// CSV with a header line, for spreadsheets and audit archives.
    Csv,
}
