//! No policy from the folder itself: a `.rights-policy` planted in the
//! source folder by someone else must not add grants to the files the
//! owner creates through a real `rights mount --daemon`; one written by
//! `rights policy set` (signed by the owner's device) is used, and stops
//! counting once changed.

mod cli_support;

use std::path::Path;

use cli_support::daemon::{Daemon, mount_log};
use cli_support::{Server, User};

/// The policy in the header of a protected file `user` made, as text (the
/// grants are sealed: their owner copy opens with the user's device key).
fn policy_of(user: &User, protected: &Path) -> (String, u32) {
    let h = rightsfs::format::read_header(&std::fs::File::open(protected).unwrap()).unwrap();
    let p = h.body.licence.open_grants_as_owner(&user.device_key()).unwrap();
    (format!("{:?}", p.grants), p.offline_days)
}

#[test]
fn only_a_policy_file_this_device_signed_sets_new_files_grants() {
    let server = Server::start();
    let user = User::new("folder-owner@example.com", true);
    user.signup(&server);
    let src = user.home.path().join("src");
    let mnt = user.home.path().join("mnt");
    let mut daemon = Daemon::start(&user, &src, &mnt);

    // The attack: an outsider's grant and ten years offline.
    let planted = "grants = [\"someone@evil.example:view,share\"]\noffline_days = 3650\n";
    std::fs::write(src.join(".rights-policy"), planted).unwrap();
    std::fs::write(mnt.join("after-plant.txt"), b"mine").unwrap();
    let (grants, days) = policy_of(&user, &src.join("after-plant.txt.rights"));
    assert!(!grants.contains("evil.example"), "the planted grant was used: {grants}");
    assert_ne!(days, 3650);
    let log = mount_log(&user);
    assert!(
        log.lines()
            .any(|l| l.contains("ignoring a folder policy file") && l.contains(".rights-policy")),
        "no warning about the planted file:\n{log}"
    );
    let status: serde_json::Value = serde_json::from_str(user.ok(&["--json", "status"]).trim()).unwrap();
    let ignored = status["mounts"][0]["ignored_policies"].to_string();
    assert!(
        ignored.contains(".rights-policy") && ignored.contains("not signed"),
        "{status}"
    );
    let shown = user.run(&["policy", "show", src.to_str().unwrap()]);
    assert!(!shown.status.success(), "policy show accepts the planted file");

    // The owner's own policy, signed on this device.
    user.ok(&[
        "policy",
        "set",
        src.to_str().unwrap(),
        "--to",
        "bob@example.com:view",
        "--offline-days",
        "2",
    ]);
    assert!(
        user.ok(&["policy", "show", src.to_str().unwrap()])
            .contains("bob@example.com:view")
    );
    std::fs::write(mnt.join("after-set.txt"), b"mine").unwrap();
    let (grants, days) = policy_of(&user, &src.join("after-set.txt.rights"));
    assert!(grants.contains("bob@example.com"), "{grants}");
    assert_eq!(days, 2);

    // Changed after signing: not used any more.
    let text = std::fs::read_to_string(src.join(".rights-policy")).unwrap();
    std::fs::write(
        src.join(".rights-policy"),
        text.replace("bob@example.com:view", "someone@evil.example:view"),
    )
    .unwrap();
    assert!(!user.run(&["policy", "show", src.to_str().unwrap()]).status.success());
    std::fs::write(mnt.join("after-edit.txt"), b"mine").unwrap();
    let (grants, _) = policy_of(&user, &src.join("after-edit.txt.rights"));
    assert!(!grants.contains("evil.example") && !grants.contains("bob@"), "{grants}");
    daemon.unmount(&user);
}

/// The owner's signed policy for a team folder, copied by someone into a
/// private folder, does not share the private folder's new files with the
/// team: the signature names the folder it was made for.
#[test]
fn a_signed_policy_file_copied_into_another_folder_does_not_apply_there() {
    let server = Server::start();
    let user = User::new("two-folders@example.com", true);
    user.signup(&server);
    let src = user.home.path().join("src");
    let mnt = user.home.path().join("mnt");
    let mut daemon = Daemon::start(&user, &src, &mnt);
    std::fs::create_dir(mnt.join("team")).unwrap();
    std::fs::create_dir(mnt.join("private")).unwrap();
    user.ok(&[
        "policy",
        "set",
        src.join("team").to_str().unwrap(),
        "--to",
        "team@example.com:view,edit",
    ]);
    std::fs::write(mnt.join("team/plan.txt"), b"for the team").unwrap();
    let (grants, _) = policy_of(&user, &src.join("team/plan.txt.rights"));
    assert!(grants.contains("team@example.com"), "{grants}");

    // The attack: the team folder's genuine policy file, copied.
    std::fs::copy(src.join("team/.rights-policy"), src.join("private/.rights-policy")).unwrap();
    std::fs::write(mnt.join("private/diary.txt"), b"mine alone").unwrap();
    let (grants, _) = policy_of(&user, &src.join("private/diary.txt.rights"));
    assert!(
        !grants.contains("team@example.com"),
        "the copied policy applied: {grants}"
    );
    let shown = user.run(&["policy", "show", src.join("private").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&shown.stderr);
    assert!(
        !shown.status.success() && err.contains("signed for the folder"),
        "policy show accepts the copy: {err}"
    );
    let log = mount_log(&user);
    assert!(
        log.lines()
            .any(|l| l.contains("ignoring a folder policy file") && l.contains("private")),
        "no warning about the copied file:\n{log}"
    );
    daemon.unmount(&user);
}
