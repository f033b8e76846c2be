//! A minimal SMTP receiver on loopback: enough of RFC 5321 for the server's
//! mailer to deliver sign-up codes, which the tests read back.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Captured messages (raw DATA) and the port they arrive on.
#[derive(Clone)]
pub struct Smtp {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<String>>>,
}

impl Smtp {
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m = mails.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let m = m.clone();
                std::thread::spawn(move || {
                    let _ = session(s, &m);
                });
            }
        });
        Self { port, mails }
    }

    /// Waits for a mail to `to` whose body contains a code; returns the code.
    pub fn code_for(&self, to: &str, seen_before: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let mails = self.mails.lock().unwrap();
                for mail in mails.iter().skip(seen_before) {
                    if mail.to_ascii_lowercase().contains(&to.to_ascii_lowercase())
                        && let Some(c) = extract_code(mail)
                    {
                        return c;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no code mailed to {to}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Mails whose envelope or headers name `to`.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let to = to.to_ascii_lowercase();
        self.mails
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to_ascii_lowercase().contains(&to))
            .cloned()
            .collect()
    }

    pub fn count(&self) -> usize {
        self.mails.lock().unwrap().len()
    }
}

/// The code in a mail: the first line of the body that is only digits,
/// else the first 6-to-8 digit word of the body.
fn extract_code(mail: &str) -> Option<String> {
    let body = mail.split("\r\n\r\n").skip(1).collect::<Vec<_>>().join("\n");
    let body = body.replace("=\r\n", "");
    let words: Vec<&str> = body
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words
        .iter()
        .find(|w| (6..=8).contains(&w.len()) && w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| w.to_string())
}

fn session(s: TcpStream, mails: &Mutex<Vec<String>>) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    w.write_all(b"220 localhost test SMTP\r\n")?;
    let mut envelope = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            w.write_all(b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?;
        } else if cmd.starts_with("HELO")
            || cmd.starts_with("MAIL")
            || cmd.starts_with("RSET")
            || cmd.starts_with("NOOP")
        {
            w.write_all(b"250 OK\r\n")?;
        } else if cmd.starts_with("RCPT") {
            envelope.push_str(&line);
            w.write_all(b"250 OK\r\n")?;
        } else if cmd == "DATA" {
            w.write_all(b"354 go on\r\n")?;
            let mut data = envelope.clone();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(&l));
            }
            mails.lock().unwrap().push(data);
            envelope.clear();
            w.write_all(b"250 queued\r\n")?;
        } else if cmd == "QUIT" {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            w.write_all(b"502 not implemented\r\n")?;
        }
    }
}
