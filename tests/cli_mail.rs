//! End to end: every mail the server sends over SMTP is well-formed
//! (Message-ID, Date, MIME-Version, a text part with its charset), an
//! invitation says which file, from whom, with which rights until when and
//! how to open it, and `rights send` mails carry a Message-ID.

mod cli_support;

use cli_support::{Server, User};

/// The header block of a captured mail (the test SMTP server prefixes the
/// envelope's RCPT lines).
fn headers(mail: &str) -> &str {
    mail.split("\r\n\r\n").next().unwrap()
}

fn assert_well_formed(mail: &str) {
    let h = headers(mail);
    for name in ["Message-ID: <", "Date: ", "MIME-Version: 1.0"] {
        assert!(h.contains(name), "no {name} in:\n{h}");
    }
    assert!(mail.contains("text/plain; charset=utf-8"), "no charset in:\n{mail}");
}

#[test]
fn every_mail_is_well_formed_and_invitations_say_what_was_shared() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    let bob = User::new("bob@example.com", true);
    alice.signup(&server);
    bob.signup(&server);
    let code_mail = &server.smtp.mails_to("bob@example.com")[0];
    assert_well_formed(code_mail);

    alice.write("q3-report.txt", b"numbers");
    alice.ok(&["protect", "q3-report.txt"]);
    alice.ok(&["share", "q3-report.txt.rights", "--to", "bob@example.com:view,edit:7d"]);
    let mails = server.smtp.mails_to("bob@example.com");
    let invite = mails.iter().find(|m| m.contains("shared")).expect("an invitation");
    assert_well_formed(invite);
    let text = invite.replace("=\r\n", "");
    for part in [
        "q3-report.txt.rights",
        "alice@example.com",
        "view,edit",
        "until ",
        "rights signup",
        "rights cat",
    ] {
        assert!(text.contains(part), "the invitation lacks {part}:\n{text}");
    }

    let eml = alice.docs().join("q3.eml");
    alice.ok(&[
        "send",
        "q3-report.txt.rights",
        "--to",
        "bob@example.com",
        "--eml-out",
        eml.to_str().unwrap(),
    ]);
    let sent = std::fs::read_to_string(&eml).unwrap();
    assert!(headers(&sent).contains("Message-ID: <"), "{sent}");
}

/// `rights send` in a loop to one stranger is stopped by the server at the
/// recipient limit, and `rights send` and `rights share` say why and when
/// to retry; the stranger's inbox holds no more than the limit.
#[test]
fn sending_in_a_loop_to_a_stranger_stops_at_the_limit_and_says_so() {
    let server = Server::start_with(&["--mail-window", "2592000", "--mails-per-recipient", "2"]);
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let stranger = "stranger@example.org";
    alice.write("a.txt", b"first");
    alice.ok(&["protect", "a.txt"]);
    for _ in 0..2 {
        alice.ok(&["send", "a.txt.rights", "--to", stranger]);
    }
    let err = alice.fails(&["send", "a.txt.rights", "--to", stranger]);
    for part in ["429", "stranger@example.org", "2 mails", "retry in"] {
        assert!(err.contains(part), "`rights send` over the limit lacks {part}: {err}");
    }
    alice.write("b.txt", b"second");
    alice.ok(&["protect", "b.txt"]);
    let err = alice.fails(&["share", "b.txt.rights", "--to", &format!("{stranger}:view")]);
    for part in ["429", "nothing was shared", "retry in"] {
        assert!(err.contains(part), "`rights share` over the limit lacks {part}: {err}");
    }
    assert_eq!(server.smtp.mails_to(stranger).len(), 2);
}
