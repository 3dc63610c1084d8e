//! What platforms hear (issue 22): events in one order (`seq`), each written together with its
//! webhook deliveries (the outbox, `store::webhooks`) in one transaction, so an event that exists
//! is delivered, whatever happens to the process after it commits. Kept [`KEPT_DAYS`] days for
//! `GET /api/v1/events`.
//!
//! `seq` comes from the one row of `platform_event_seq`, updated first in the transaction: the
//! row's lock (PostgreSQL) or the write lock (SQLite, `BEGIN IMMEDIATE`) holds every other event
//! back until this one commits, so events become visible in `seq` order and a reader paging
//! "after N" never skips one that committed late with a smaller number.

use super::{get, new_id, now, Db, StoreError};
use crate::platform::EventType;
use crate::store::platform::PlatformKey;
use sqlx::any::AnyRow;

/// Events are kept this long.
pub const KEPT_DAYS: i64 = 30;

/// An event as a platform reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub workspace_id: Option<String>,
    pub connection_id: Option<String>,
    pub data: serde_json::Value,
    pub created_at: i64,
}

fn event(row: &AnyRow) -> Result<Event, StoreError> {
    let data: String = get(row, "data")?;
    Ok(Event {
        seq: get(row, "seq")?,
        id: get(row, "id")?,
        kind: get(row, "type")?,
        workspace_id: get(row, "workspace_id")?,
        connection_id: get(row, "connection_id")?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        created_at: get(row, "created_at")?,
    })
}

/// Who hears an event: the keys that reach a workspace, or one key.
#[derive(Clone, Copy, Debug)]
pub enum Audience<'a> {
    Workspace(&'a str),
    Key(&'a str),
}

/// Records an event and a delivery for each live endpoint that hears it (its key is live, reaches
/// the audience and subscribes to the type), in one write transaction. `data` gets the event's
/// id, workspace and connection added. The event's id.
pub async fn emit(
    db: &Db,
    audience: Audience<'_>,
    connection_id: Option<&str>,
    kind: EventType,
    data: serde_json::Value,
) -> Result<String, StoreError> {
    let mut tx = db.begin_write().await?;
    let emitted = emit_in(&mut tx, audience, connection_id, kind, data).await?;
    tx.commit().await?;
    Ok(emitted.sent(db))
}

/// An event written in a transaction; [`Emitted::sent`] after the commit wakes the sender.
#[must_use = "call `sent` after the commit"]
pub struct Emitted {
    pub id: String,
    deliveries: usize,
}

impl Emitted {
    /// Wakes this process's webhook sender when the event has deliveries; the event's id.
    pub fn sent(self, db: &Db) -> String {
        if self.deliveries > 0 {
            db.outbox().notify_one();
        }
        self.id
    }
}

/// [`emit`] inside the caller's write transaction (begun with `Db::begin_write`), so the event
/// and its deliveries exist exactly when the change they report does.
pub(crate) async fn emit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    audience: Audience<'_>,
    connection_id: Option<&str>,
    kind: EventType,
    mut data: serde_json::Value,
) -> Result<Emitted, StoreError> {
    let id = format!("evt_{}", new_id());
    let now = now();
    let (workspace_id, key_id) = match audience {
        Audience::Workspace(w) => (Some(w), None),
        Audience::Key(k) => (None, Some(k)),
    };
    if let Some(map) = data.as_object_mut() {
        map.insert("event_id".into(), id.clone().into());
        if let Some(w) = workspace_id {
            map.insert("workspace_id".into(), w.into());
        }
        if let Some(c) = connection_id {
            map.insert("connection_id".into(), c.into());
        }
    }
    let seq: i64 = sqlx::query_scalar("UPDATE platform_event_seq SET last = last + 1 WHERE id = 1 RETURNING last")
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO platform_events (seq, id, workspace_id, key_id, connection_id, type, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
    .bind(&id)
    .bind(workspace_id)
    .bind(key_id)
    .bind(connection_id)
    .bind(kind.as_str())
    .bind(data.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let endpoints = sqlx::query(
        "SELECT e.id, e.events FROM webhook_endpoints e JOIN platform_keys k ON k.id = e.key_id \
         WHERE e.disabled_at IS NULL AND k.revoked_at IS NULL AND (k.id = CAST($2 AS TEXT) OR \
         k.workspace_id = CAST($1 AS TEXT) OR EXISTS (SELECT 1 FROM platform_tenants t \
         WHERE t.key_id = k.id AND t.workspace_id = CAST($1 AS TEXT)))",
    )
    .bind(workspace_id)
    .bind(key_id)
    .fetch_all(&mut **tx)
    .await?;
    let body = super::webhooks::body(kind.as_str(), now, &data);
    let mut deliveries = 0;
    for endpoint in &endpoints {
        let events: String = get(endpoint, "events")?;
        if !events.split(' ').any(|e| e == kind.as_str()) {
            continue;
        }
        let endpoint_id: String = get(endpoint, "id")?;
        super::webhooks::enqueue(tx, &endpoint_id, &id, kind.as_str(), &body, now).await?;
        deliveries += 1;
    }
    Ok(Emitted { id, deliveries })
}

/// [`connection_data`] of a stored connection, read in the caller's transaction.
pub(crate) async fn connection_data_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let row =
        sqlx::query("SELECT base_url, username, expires_at FROM integrations WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let (base_url, username): (String, String) = (get(&row, "base_url")?, get(&row, "username")?);
    Ok(Some(connection_data(&base_url, &username, get::<Option<String>>(&row, "expires_at")?.as_deref())))
}

/// What a connection's events say of it (never a secret): what a collector needs to decide
/// whether to read it again.
pub fn connection_data(base_url: &str, gitlab_username: &str, token_expires_at: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "base_url": base_url,
        "gitlab_username": gitlab_username,
        "token_expires_at": token_expires_at,
    })
}

/// [`emit`] for a workspace's event, logging instead of failing: the change it reports is made
/// already, and the person who made it must not see an error for it.
pub async fn emit_logged(
    db: &Db,
    workspace_id: &str,
    connection_id: Option<&str>,
    kind: EventType,
    data: serde_json::Value,
) {
    if let Err(e) = emit(db, Audience::Workspace(workspace_id), connection_id, kind, data).await {
        tracing::error!(error = %e, kind = kind.as_str(), "cannot record a platform event");
    }
}

/// The `seq` of the event `id` the key hears, as the place to read on from.
pub async fn position(db: &Db, key: &PlatformKey, id: &str) -> Result<Option<i64>, StoreError> {
    let seq = sqlx::query_scalar(&format!("SELECT seq FROM platform_events e WHERE e.id = $1 AND {HEARS}"))
        .bind(id)
        .bind(&key.id)
        .bind(&key.workspace_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(seq)
}

/// The events `key` hears (`$2` the key, `$3` its workspace or NULL), in `e`.
const HEARS: &str = "(e.key_id = $2 OR (e.key_id IS NULL AND (e.workspace_id = CAST($3 AS TEXT) OR \
     e.workspace_id IN (SELECT t.workspace_id FROM platform_tenants t WHERE t.key_id = $2))))";

/// The events `key` hears after `seq`, oldest first, at most `limit`.
pub async fn after(db: &Db, key: &PlatformKey, seq: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT seq, id, type, workspace_id, connection_id, data, created_at FROM platform_events e \
         WHERE e.seq > $1 AND {HEARS} ORDER BY e.seq LIMIT $4"
    ))
    .bind(seq)
    .bind(&key.id)
    .bind(&key.workspace_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(event).collect()
}

/// Forgets events older than [`KEPT_DAYS`].
pub async fn purge(db: &Db) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM platform_events WHERE created_at < $1")
        .bind(now() - KEPT_DAYS * 24 * 3600)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::sqlite;

    /// Events written at once get distinct, gapless `seq`s, and each is visible with every smaller
    /// one already there (what a reader paging by `seq` relies on).
    #[tokio::test]
    async fn events_written_at_once_are_numbered_in_order_without_gaps() {
        let (db, _dir) = sqlite().await;
        let writes = (0..16).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let data = serde_json::json!({ "n": i });
                emit(&db, Audience::Workspace("w1"), Some("c1"), EventType::ScopeUpdated, data).await.unwrap()
            })
        });
        let mut ids = Vec::new();
        for write in writes {
            ids.push(write.await.unwrap());
        }
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM platform_events ORDER BY seq").fetch_all(db.pool()).await.unwrap();
        assert_eq!(seqs, (1..=16).collect::<Vec<i64>>());
        // Each event's data names itself, its workspace and connection.
        let one: String = sqlx::query_scalar("SELECT data FROM platform_events WHERE id = $1")
            .bind(&ids[3])
            .fetch_one(db.pool())
            .await
            .unwrap();
        let one: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert_eq!((one["event_id"].as_str(), one["workspace_id"].as_str()), (Some(ids[3].as_str()), Some("w1")));
        assert_eq!(one["connection_id"], "c1");
    }
}
