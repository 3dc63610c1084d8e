//! Mail about connections: a rotation done or failed, a re-check that failed, an expiry ahead.
//! Optional: with `ONRAMP_SMTP_URL` and `ONRAMP_MAIL_FROM` set, each connection event goes once to
//! the workspace's owners and admins; without them, events show on the pages and in the API only.
//! A mail names the connection and links to its page and to the step that fixes it; it never
//! holds the token (events never do). The job that sends what waits is `jobs::mail`; this module
//! knows mail only, not the application's state.

use crate::integration::event;
use crate::store::events::Outgoing;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where Onramp is reached (`ONRAMP_PUBLIC_URL`), for the links in a mail.
    origin: String,
}

/// Where mail goes out, from the environment. `Debug` never shows the SMTP URL (it may hold a
/// password).
#[derive(Clone)]
pub struct MailSettings {
    pub smtp_url: String,
    pub from: String,
    /// Where Onramp is reached, for the links in a mail.
    pub origin: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings").field("from", &self.from).field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl MailSettings {
    /// `ONRAMP_SMTP_URL` (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://…:465`), `ONRAMP_MAIL_FROM` (`Onramp <onramp@example.com>`) and `ONRAMP_PUBLIC_URL`.
    /// `None` when `ONRAMP_SMTP_URL` is not set; an error that names the variable when a value is
    /// wrong.
    pub fn from_env() -> Result<Option<MailSettings>, String> {
        let Some(smtp_url) = std::env::var("ONRAMP_SMTP_URL").ok().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let from = std::env::var("ONRAMP_MAIL_FROM")
            .map_err(|_| "ONRAMP_MAIL_FROM: set it to the sender's address when ONRAMP_SMTP_URL is set".to_owned())?;
        let origin = std::env::var("ONRAMP_PUBLIC_URL").map_err(|_| {
            "ONRAMP_PUBLIC_URL: set it to Onramp's address (https://onramp.example.com) when ONRAMP_SMTP_URL is set: \
             mails link to it"
                .to_owned()
        })?;
        let settings = MailSettings { smtp_url, from, origin };
        Mailer::new(&settings)?;
        Ok(Some(settings))
    }
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Mailer, String> {
        // The URL may hold a password: never echo it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.trim())
            .map_err(|_| {
                "ONRAMP_SMTP_URL: expected smtp://host:port, smtp://user:password@host:587?tls=required or \
                 smtps://host:465"
                    .to_owned()
            })?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let from: Mailbox = settings
            .from
            .trim()
            .parse()
            .map_err(|e| format!("ONRAMP_MAIL_FROM: {e} (expected Onramp <onramp@example.com>)"))?;
        Ok(Mailer { transport, from, origin: settings.origin.trim().trim_end_matches('/').to_owned() })
    }

    /// Mails an event to its recipients (see [`compose`]).
    pub async fn send_event(&self, out: &Outgoing) -> Result<(), String> {
        let (subject, body) = compose(out, &self.origin);
        self.send(&out.to, &subject, body).await
    }

    /// Mails `body` under `subject` to `to` (addresses that cannot take mail are left out).
    pub async fn send(&self, to: &[String], subject: &str, body: String) -> Result<(), String> {
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for address in to {
            match address.parse::<Mailbox>() {
                Ok(mailbox) => message = message.to(mailbox),
                Err(_) => tracing::warn!("a member's e-mail address is not one a mail can go to; left out"),
            }
        }
        let message =
            message.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| format!("cannot build the mail: {e}"))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| format!("the mail server refused the mail: {e}"))
    }
}

/// A mail's subject and text for an event.
pub fn compose(out: &Outgoing, origin: &str) -> (String, String) {
    let subject = event::subject(&out.event.kind, &out.connection);
    let mut body = format!("{}\n\n{}\n", out.connection, out.event.detail);
    if let Some(step) = out.event.fix_step {
        body.push_str(&format!("\nWhat fixes it: {origin}{}\n", crate::wizard::step_href(step, None)));
    }
    body.push_str(&format!("\nThe connection: {origin}/integrations/gitlab/connections/{}\n", out.integration_id));
    body.push_str(
        "\nYou receive this because you are an owner or admin of the Onramp workspace this GitLab connection \
         belongs to.\n",
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::ConnectionEvent;

    #[test]
    fn a_mail_names_the_connection_and_links_to_the_fix() {
        let out = Outgoing {
            event: ConnectionEvent {
                id: "e".into(),
                kind: event::ROTATION_LOST.into(),
                detail: "This connection needs a new token.".into(),
                fix_step: Some(7),
                created_at: 0,
                mail_state: "pending".into(),
            },
            workspace_id: "w".into(),
            integration_id: "c1".into(),
            connection: "jdoe on gitlab.example.com".into(),
            to: vec!["lead@example.com".into()],
        };
        let (subject, body) = compose(&out, "https://onramp.example.com");
        assert_eq!(subject, "jdoe on gitlab.example.com needs a new GitLab token");
        assert!(body.contains("This connection needs a new token."), "{body}");
        assert!(body.contains(&format!("https://onramp.example.com{}", crate::wizard::step_href(7, None))), "{body}");
        assert!(body.contains("https://onramp.example.com/integrations/gitlab/connections/c1"), "{body}");
    }

    #[test]
    fn settings_errors_name_the_variable_and_never_the_password() {
        let settings = |url: &str, from: &str| MailSettings {
            smtp_url: url.into(),
            from: from.into(),
            origin: "https://o".into(),
        };
        let bad_url = settings("ftp://user:hunter2@mail", "Onramp <o@example.com>");
        let e = Mailer::new(&bad_url).err().unwrap();
        assert!(e.starts_with("ONRAMP_SMTP_URL") && !e.contains("hunter2"), "{e}");
        assert!(!format!("{bad_url:?}").contains("hunter2"));
        let e = Mailer::new(&settings("smtp://127.0.0.1:25", "not an address")).err().unwrap();
        assert!(e.starts_with("ONRAMP_MAIL_FROM"), "{e}");
        assert!(Mailer::new(&settings("smtp://127.0.0.1:2525", "Onramp <o@example.com>")).is_ok());
    }
}
