//! Connection events (rotated, rotation failed, re-check failed, expiry ahead) and their mail
//! outbox. An event happens once per `once_key`: the same expiry warning is not recorded (or
//! mailed) again every day.

use super::{get, new_id, now, platform_events, Db, StoreError};
use crate::integration::ConnectionEvent;
use crate::platform::EventType;
use sqlx::any::AnyRow;

/// A mail is given up on after this many failed attempts.
pub const MAIL_ATTEMPTS: i64 = 5;

/// Events kept per connection (the oldest go first).
pub const KEPT_PER_CONNECTION: i64 = 200;

fn event(row: &AnyRow) -> Result<ConnectionEvent, StoreError> {
    Ok(ConnectionEvent {
        id: get(row, "id")?,
        kind: get(row, "kind")?,
        detail: get(row, "detail")?,
        fix_step: get::<Option<i64>>(row, "fix_step")?.and_then(|s| u8::try_from(s).ok()),
        created_at: get(row, "created_at")?,
        mail_state: get(row, "mail_state")?,
    })
}

/// An event to record.
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub detail: &'a str,
    pub fix_step: Option<u8>,
    /// The event happens once per key.
    pub once_key: &'a str,
}

/// Records an event of a connection unless one with its `once_key` exists. `mail`: whether it
/// waits for the mailer (false without a mail server). `heard`: what the connection's platforms
/// hear of it (`store::platform_events`), written in the same transaction when the event is new.
/// True when it is new.
pub async fn record(
    db: &Db,
    workspace_id: &str,
    integration_id: &str,
    new: &NewEvent<'_>,
    mail: bool,
    heard: Option<(EventType, serde_json::Value)>,
) -> Result<bool, StoreError> {
    let NewEvent { kind, detail, fix_step, once_key } = *new;
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "INSERT INTO connection_events (id, integration_id, workspace_id, kind, detail, fix_step, once_key, created_at, \
         mail_state) SELECT $1, id, workspace_id, $2, $3, $4, $5, $6, $7 FROM integrations \
         WHERE id = $8 AND workspace_id = $9",
    )
    .bind(new_id())
    .bind(kind)
    .bind(detail)
    .bind(fix_step.map(i64::from))
    .bind(once_key)
    .bind(now())
    .bind(if mail { "pending" } else { "none" })
    .bind(integration_id)
    .bind(workspace_id)
    .execute(&mut *tx)
    .await;
    match done {
        Ok(done) if done.rows_affected() == 1 => {
            let emitted = match heard {
                Some((kind, data)) => Some(
                    platform_events::emit_in(
                        &mut tx,
                        platform_events::Audience::Workspace(workspace_id),
                        Some(integration_id),
                        kind,
                        data,
                    )
                    .await?,
                ),
                None => None,
            };
            tx.commit().await?;
            if let Some(emitted) = emitted {
                emitted.sent(db);
            }
            trim(db, integration_id).await?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn trim(db: &Db, integration_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM connection_events WHERE integration_id = $1 AND id NOT IN \
         (SELECT id FROM connection_events WHERE integration_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)",
    )
    .bind(integration_id)
    .bind(KEPT_PER_CONNECTION)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A connection's events, newest first.
pub async fn list(
    db: &Db,
    workspace_id: &str,
    integration_id: &str,
    limit: i64,
) -> Result<Vec<ConnectionEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, kind, detail, fix_step, created_at, mail_state FROM connection_events \
         WHERE integration_id = $1 AND workspace_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(integration_id)
    .bind(workspace_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(event).collect()
}

/// An event waiting for its mail, with what the mail needs.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub event: ConnectionEvent,
    pub workspace_id: String,
    pub integration_id: String,
    /// The connection as people know it: `jdoe on gitlab.example.com`.
    pub connection: String,
    /// The e-mail addresses of the workspace's owners and admins.
    pub to: Vec<String>,
}

/// Whether a stored address may be written into a mail's `To`: only a plain address in its
/// canonical form. Accounts made before addresses were parsed strictly may hold one like
/// `x<victim@corp.example>`, which a mail library reads as a name and *another* address: such a
/// member gets no mail rather than someone else getting it.
pub fn mailable(address: &str) -> bool {
    crate::account::Email::parse(address).is_ok_and(|email| email.as_str() == address)
}

/// Events whose mail is pending, oldest first, at most `limit`.
pub async fn outbox(db: &Db, limit: i64) -> Result<Vec<Outgoing>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.id, e.kind, e.detail, e.fix_step, e.created_at, e.mail_state, e.workspace_id, e.integration_id, \
         i.username, i.base_url FROM connection_events e JOIN integrations i ON i.id = e.integration_id \
         WHERE e.mail_state = 'pending' ORDER BY e.created_at, e.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let workspace_id: String = get(row, "workspace_id")?;
        let to = sqlx::query(&format!(
            "SELECT {} AS email FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.workspace_id = $1 AND m.role IN ('owner', 'admin') ORDER BY email",
            super::EMAIL_OF_U
        ))
        .bind(&workspace_id)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| get::<String>(r, "email"))
        .collect::<Result<Vec<String>, _>>()?
        .into_iter()
        .filter(|address| mailable(address))
        .collect();
        let username: String = get(row, "username")?;
        let base_url: String = get(row, "base_url")?;
        out.push(Outgoing {
            event: event(row)?,
            workspace_id,
            integration_id: get(row, "integration_id")?,
            connection: format!(
                "{username} on {}",
                base_url.trim_start_matches("https://").trim_start_matches("http://")
            ),
            to,
        });
    }
    Ok(out)
}

/// Takes an event's mail for sending: one atomic update, so of several processes one sends it.
/// (A process that dies while sending leaves it `sending`: at most one mail per event.)
pub async fn claim_mail(db: &Db, event_id: &str) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE connection_events SET mail_state = 'sending' WHERE id = $1 AND mail_state = 'pending'")
            .bind(event_id)
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The mail of an event went out (`sent`), or had nobody to go to (`none`).
pub async fn mailed(db: &Db, event_id: &str, state: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE connection_events SET mail_state = $1 WHERE id = $2 AND mail_state = 'sending'")
        .bind(state)
        .bind(event_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A mail attempt failed; after [`MAIL_ATTEMPTS`] the event stops waiting (`failed`).
pub async fn mail_failed(db: &Db, event_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE connection_events SET mail_attempts = mail_attempts + 1, \
         mail_state = CASE WHEN mail_attempts + 1 >= $1 THEN 'failed' ELSE 'pending' END \
         WHERE id = $2 AND mail_state = 'sending'",
    )
    .bind(MAIL_ATTEMPTS)
    .bind(event_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_canonical_addresses_are_mailed() {
        assert!(mailable("jane@example.com"));
        for stored in ["x<victim@corp.example>", "Jane <jane@example.com>", "\"a\"@example.com", "a\u{0}@example.com"] {
            assert!(!mailable(stored), "{stored:?}");
        }
        assert!(!mailable("Jane@example.com"), "not canonical: not as Onramp stores addresses now");
    }
}
