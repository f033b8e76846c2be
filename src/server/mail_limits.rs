//! Limits on the mail a signed-in account can make the server send to
//! other people (share invitations, files sent through the server): per
//! sender account and per recipient address, in fixed windows, counted in
//! the database so that every replica sees the same counts.
//!
//! Why both: the sender limit stops one account from spraying mail at many
//! addresses; the recipient limit stops many accounts (or one looping over
//! many files) from burying one address. Sign-in code mails are not
//! counted here: they go only to the address that asked, spaced by the
//! sign-in backoff, and counting them here would let a stranger who shares
//! files with someone keep that person from signing in.

use super::error::{ApiError, ApiResult};
use crate::store::Store;

/// The limits, from the server's options.
#[derive(Clone, Copy, Debug)]
pub struct MailLimits {
    /// Length of a counting window, in seconds.
    pub window: i64,
    /// Mails one account may cause per window.
    pub per_sender: i64,
    /// Mails one address may receive per window, whoever causes them.
    pub per_recipient: i64,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self {
            window: 3600,
            per_sender: 100,
            per_recipient: 10,
        }
    }
}

impl MailLimits {
    /// Reserves one mail from `sender` to each of `recipients` (distinct
    /// addresses), all or none: over any limit, what was reserved is given
    /// back and the answer is 429 with `Retry-After` at the window's end.
    /// Reserving before anything is changed or sent keeps a refused
    /// request free of side effects.
    pub async fn reserve(&self, store: &dyn Store, sender: &str, recipients: &[&str]) -> ApiResult<()> {
        if recipients.is_empty() {
            return Ok(());
        }
        let now = crate::policy::now();
        let win = now - now.rem_euclid(self.window);
        let wait = win + self.window - now;
        let n = i64::try_from(recipients.len()).unwrap_or(i64::MAX);
        let from_key = format!("mail-from:{}", sender.to_ascii_lowercase());
        if !store.take(&from_key, win, n, self.per_sender).await? {
            return Err(ApiError::too_many(
                wait,
                format!(
                    "this would make the server send more than {} mails for you within {}; \
                     nothing was shared or sent: retry in {} (or name fewer recipients)",
                    self.per_sender,
                    span(self.window),
                    span(wait)
                ),
            ));
        }
        for (i, to) in recipients.iter().enumerate() {
            let to_key = format!("mail-to:{}", to.to_ascii_lowercase());
            if store.take(&to_key, win, 1, self.per_recipient).await? {
                continue;
            }
            store.take(&from_key, win, -n, i64::MAX).await?;
            for done in &recipients[..i] {
                store
                    .take(&format!("mail-to:{}", done.to_ascii_lowercase()), win, -1, i64::MAX)
                    .await?;
            }
            return Err(ApiError::too_many(
                wait,
                format!(
                    "{to} has already been sent {} mails through this server within {}; \
                     nothing was shared or sent: retry in {}",
                    self.per_recipient,
                    span(self.window),
                    span(wait)
                ),
            ));
        }
        Ok(())
    }
}

/// A number of seconds for people: "45 s", "12 min", "2 h".
fn span(secs: i64) -> String {
    let up = |unit: i64| (secs + unit - 1) / unit;
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 7200 {
        format!("{} min", up(60))
    } else if secs < 172_800 {
        format!("{} h", up(3600))
    } else {
        format!("{} days", up(86_400))
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(45), "45 s");
        assert_eq!(span(3600), "60 min");
        assert_eq!(span(86_400), "24 h");
        assert_eq!(span(2_592_000), "30 days");
    }
}
