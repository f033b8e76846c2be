//! `rights protect` of a file in place: the plaintext original is removed,
//! but its blocks stay on the disk unless `--shred` overwrites them first.
//! A second name (hard link) of the original shows what is left in them.

mod cli_support;

use cli_support::{Server, User};

#[test]
fn protect_says_the_original_may_remain_and_shred_overwrites_it() {
    let server = Server::start();
    let user = User::new("shred@example.com", true);
    user.signup(&server);
    let secret = b"the quarterly numbers, before anyone else sees them\n".repeat(2000);

    let plain = user.write("kept.txt", &secret);
    let other_name = user.docs().join("kept-link");
    std::fs::hard_link(&plain, &other_name).unwrap();
    let o = user.run(&["protect", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("may remain on the disk") && err.contains("--shred"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&other_name).unwrap(),
        secret,
        "the blocks still hold the plaintext"
    );

    let plain = user.write("shredded.txt", &secret);
    let other_name = user.docs().join("shredded-link");
    std::fs::hard_link(&plain, &other_name).unwrap();
    let o = user.run(&["protect", "--shred", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!plain.exists());
    let left = std::fs::read(&other_name).unwrap();
    assert_eq!(left.len(), secret.len());
    assert!(
        left.iter().all(|b| *b == 0),
        "the original's blocks were not overwritten"
    );
    let shown = user.ok(&["cat", user.docs().join("shredded.txt.rights").to_str().unwrap()]);
    assert_eq!(shown.as_bytes(), &secret[..]);
}
