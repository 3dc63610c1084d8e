//! Webhook endpoints and the outbox of their deliveries (issue 22). A delivery row is written in
//! the transaction that records its event (`platform_events::emit`), before anything is sent; a
//! sender [`claim`]s due rows with a lease (one statement: of several processes each row goes to
//! one), sends, and [`finish`]es each with the attempt's outcome: delivered, a next try after
//! [`crate::platform::retry_in`], or given up. A sender killed mid-send leaves its rows leased
//! until the lease runs out; then any sender takes them again (the receiver may see a message
//! twice, with the same `webhook-id`, as Standard Webhooks allows).
//!
//! An endpoint's signing secret is sealed with the instance key, bound to the endpoint and its
//! key; it is shown once when the endpoint is made.

use super::crypto::{bind, Keyring, Sealed};
use super::{get, new_id, now, Db, StoreError};
use crate::platform::EventType;
use crate::signing::WebhookSecret;
use crate::store::platform::PlatformKey;
use sqlx::any::AnyRow;

/// At most this many endpoints per key.
pub const MAX_ENDPOINTS: i64 = 10;
/// An endpoint failing this long without one success is disabled.
pub const DISABLE_AFTER_SECONDS: i64 = 5 * 24 * 3600;
/// How long a sender holds a claimed delivery (a send takes at most the 10 s timeout).
pub const LEASE_SECONDS: i64 = 60;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub key_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: i64,
    pub failing_since: Option<i64>,
    pub disabled_at: Option<i64>,
}

fn endpoint(row: &AnyRow) -> Result<Endpoint, StoreError> {
    let events: String = get(row, "events")?;
    Ok(Endpoint {
        id: get(row, "id")?,
        key_id: get(row, "key_id")?,
        url: get(row, "url")?,
        events: events.split(' ').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        created_at: get(row, "created_at")?,
        failing_since: get(row, "failing_since")?,
        disabled_at: get(row, "disabled_at")?,
    })
}

const ENDPOINT_COLUMNS: &str = "id, key_id, url, events, created_at, failing_since, disabled_at";

fn aad(endpoint_id: &str, key_id: &str) -> Vec<u8> {
    bind(&["webhook-endpoint", endpoint_id, key_id])
}

/// Makes an endpoint of `key` for `url` (checked by the caller) and `events`; its new secret,
/// shown once. `Ok(Err(why))` when the key has [`MAX_ENDPOINTS`] already.
pub async fn create(
    db: &Db,
    keys: &Keyring,
    key: &PlatformKey,
    url: &str,
    events: &[EventType],
) -> Result<Result<(Endpoint, WebhookSecret), String>, StoreError> {
    let id = format!("ep_{}", new_id());
    let secret = WebhookSecret::generate();
    let sealed = keys.current.seal_str(&secret.expose(), &aad(&id, &key.id));
    let events: Vec<String> = events.iter().map(|e| e.as_str().to_owned()).collect();
    let now = now();
    let mut tx = db.begin_write().await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE key_id = $1")
        .bind(&key.id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_ENDPOINTS {
        return Ok(Err(format!("this key has {MAX_ENDPOINTS} webhook endpoints, the most it may: delete one first")));
    }
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, key_id, url, events, secret_key_id, secret_nonce, secret_ciphertext, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&key.id)
    .bind(url)
    .bind(events.join(" "))
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let made = Endpoint {
        id,
        key_id: key.id.clone(),
        url: url.to_owned(),
        events,
        created_at: now,
        failing_since: None,
        disabled_at: None,
    };
    Ok(Ok((made, secret)))
}

/// The key's endpoints, oldest first.
pub async fn list(db: &Db, key: &PlatformKey) -> Result<Vec<Endpoint>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE key_id = $1 ORDER BY created_at, id"
    ))
    .bind(&key.id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(endpoint).collect()
}

/// One endpoint of the key; another key's is `None`.
pub async fn find(db: &Db, key: &PlatformKey, id: &str) -> Result<Option<Endpoint>, StoreError> {
    let row = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND key_id = $2"))
        .bind(id)
        .bind(&key.id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(endpoint).transpose()
}

/// Deletes an endpoint of the key with its deliveries; false when the key has no such endpoint.
pub async fn delete(db: &Db, key: &PlatformKey, id: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT d.id FROM webhook_deliveries d \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE e.id = $1 AND e.key_id = $2)",
    )
    .bind(id)
    .bind(&key.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM webhook_deliveries WHERE endpoint_id IN (SELECT id FROM webhook_endpoints WHERE id = $1 AND key_id = $2)",
    )
    .bind(id)
    .bind(&key.id)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND key_id = $2")
        .bind(id)
        .bind(&key.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// The body of a webhook delivery of an event: Standard Webhooks' `{"type", "timestamp", "data"}`.
pub fn body(kind: &str, created_at: i64, data: &serde_json::Value) -> String {
    serde_json::json!({ "type": kind, "timestamp": super::rfc3339(created_at), "data": data }).to_string()
}

/// Puts a delivery of an event to an endpoint in the outbox, due now.
pub(crate) async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    endpoint_id: &str,
    event_id: &str,
    kind: &str,
    body: &str,
    now: i64,
) -> Result<String, StoreError> {
    let id = format!("dlv_{}", new_id());
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, type, body, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&id)
    .bind(endpoint_id)
    .bind(event_id)
    .bind(kind)
    .bind(body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// A `ping` to one endpoint of the key (`POST …/test`), in the outbox like every delivery.
/// `None` when the key has no such endpoint.
pub async fn ping(db: &Db, key: &PlatformKey, endpoint_id: &str) -> Result<Option<String>, StoreError> {
    if find(db, key, endpoint_id).await?.is_none() {
        return Ok(None);
    }
    let now = now();
    let event_id = format!("evt_{}", new_id());
    let data = serde_json::json!({ "event_id": event_id, "endpoint_id": endpoint_id });
    let body = body("ping", now, &data);
    let mut tx = db.begin_write().await?;
    let id = enqueue(&mut tx, endpoint_id, &event_id, "ping", &body, now).await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// One try of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub started_at: i64,
    pub duration_ms: i64,
    /// The HTTP status the endpoint answered; `None` when it did not (then `error` says why).
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A delivery as its platform reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: Vec<Attempt>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
}

/// The deliveries of an endpoint of the key, newest first, those before `before` (a delivery id,
/// `""` for the newest), at most `limit`, with their attempts. `None` without such an endpoint.
pub async fn deliveries(
    db: &Db,
    key: &PlatformKey,
    endpoint_id: &str,
    before: &str,
    limit: i64,
) -> Result<Option<Vec<Delivery>>, StoreError> {
    if find(db, key, endpoint_id).await?.is_none() {
        return Ok(None);
    }
    // The page, and in one more query the attempts of every delivery on it.
    const PAGE: &str = "SELECT id, event_id, type, state, next_attempt_at, created_at FROM webhook_deliveries \
         WHERE endpoint_id = $1 AND ($2 = '' OR (created_at, id) < \
         (SELECT created_at, id FROM webhook_deliveries WHERE id = $2 AND endpoint_id = $1)) \
         ORDER BY created_at DESC, id DESC LIMIT $3";
    let rows = sqlx::query(PAGE).bind(endpoint_id).bind(before).bind(limit).fetch_all(db.pool()).await?;
    let tried = sqlx::query(&format!(
        "SELECT delivery_id, started_at, duration_ms, status, error FROM webhook_attempts \
         WHERE delivery_id IN (SELECT id FROM ({PAGE}) page) ORDER BY delivery_id, number"
    ))
    .bind(endpoint_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut attempts: std::collections::HashMap<String, Vec<Attempt>> = std::collections::HashMap::new();
    for a in &tried {
        attempts.entry(get(a, "delivery_id")?).or_default().push(Attempt {
            started_at: get(a, "started_at")?,
            duration_ms: get(a, "duration_ms")?,
            status: get::<Option<i64>>(a, "status")?.and_then(|s| u16::try_from(s).ok()),
            error: get(a, "error")?,
        });
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = get(row, "id")?;
        let state: String = get(row, "state")?;
        out.push(Delivery {
            next_attempt_at: (state == "pending").then(|| get(row, "next_attempt_at")).transpose()?,
            attempts: attempts.remove(&id).unwrap_or_default(),
            id,
            endpoint_id: endpoint_id.to_owned(),
            event_id: get(row, "event_id")?,
            kind: get(row, "type")?,
            state,
            created_at: get(row, "created_at")?,
        });
    }
    Ok(Some(out))
}

/// Sends a delivery of an endpoint of the key again now (whatever its state); a disabled endpoint
/// is enabled again by it. False when the key has no such delivery.
pub async fn retry(db: &Db, key: &PlatformKey, endpoint_id: &str, delivery_id: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, ended_at = NULL WHERE id = $2 \
         AND endpoint_id = $3 AND EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = $3 AND e.key_id = $4)",
    )
    .bind(now())
    .bind(delivery_id)
    .bind(endpoint_id)
    .bind(&key.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        sqlx::query("UPDATE webhook_endpoints SET disabled_at = NULL WHERE id = $1")
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// A claimed delivery, ready to send.
pub struct Due {
    pub id: String,
    /// This claim's own value: only it may finish the delivery.
    pub claim: String,
    pub endpoint_id: String,
    pub key_id: String,
    pub url: String,
    /// The `webhook-id`: the event's id, the same on every try.
    pub message_id: String,
    pub body: String,
    pub attempts: i64,
    pub secret: WebhookSecret,
}

/// Claims at most `limit` due deliveries of enabled endpoints of live keys for [`LEASE_SECONDS`]: one
/// statement, so of several senders each row goes to one (PostgreSQL re-checks the `WHERE` on a
/// row another claim just took; SQLite writes one at a time).
pub async fn claim(db: &Db, keys: &Keyring, now: i64, limit: i64) -> Result<Vec<Due>, StoreError> {
    let claim = new_id();
    sqlx::query(
        "UPDATE webhook_deliveries SET lease_holder = $1, lease_until = $2 WHERE id IN (SELECT d.id FROM \
         webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN platform_keys k \
         ON k.id = e.key_id WHERE d.state = 'pending' AND d.next_attempt_at <= $3 AND d.lease_until <= $3 \
         AND e.disabled_at IS NULL AND k.revoked_at IS NULL \
         ORDER BY d.next_attempt_at, d.id LIMIT $4) AND state = 'pending' AND lease_until <= $3",
    )
    .bind(&claim)
    .bind(now + LEASE_SECONDS)
    .bind(now)
    .bind(limit)
    .execute(db.pool())
    .await?;
    let rows = sqlx::query(
        "SELECT d.id, d.endpoint_id, d.event_id, d.body, d.attempts, e.key_id, e.url, e.secret_key_id, \
         e.secret_nonce, e.secret_ciphertext FROM webhook_deliveries d JOIN webhook_endpoints e \
         ON e.id = d.endpoint_id WHERE d.lease_holder = $1",
    )
    .bind(&claim)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let (endpoint_id, key_id): (String, String) = (get(row, "endpoint_id")?, get(row, "key_id")?);
        let sealed = Sealed {
            key_id: get(row, "secret_key_id")?,
            nonce: get(row, "secret_nonce")?,
            ciphertext: get(row, "secret_ciphertext")?,
        };
        let text = keys.open_str(&sealed, &aad(&endpoint_id, &key_id))?;
        let secret = WebhookSecret::parse(secrecy::ExposeSecret::expose_secret(&text))
            .map_err(|e| StoreError::Config(format!("a stored webhook secret does not parse: {e}")))?;
        out.push(Due {
            id: get(row, "id")?,
            claim: claim.clone(),
            endpoint_id,
            key_id,
            url: get(row, "url")?,
            message_id: get(row, "event_id")?,
            body: get(row, "body")?,
            attempts: get(row, "attempts")?,
            secret,
        });
    }
    Ok(out)
}

/// What [`finish`] did to the endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    Delivered,
    /// Tried again at this time.
    Retry(i64),
    /// No try is left.
    GaveUp,
    /// Another sender took the delivery over (this one's lease ran out): nothing recorded.
    Lost,
}

/// Records an attempt of a claimed delivery and what follows: delivered; another try after
/// [`crate::platform::retry_in`]; or given up. A failure starts (or continues) the endpoint's run
/// of failures; a success ends it. `true` in the second place when this failure disabled the
/// endpoint ([`DISABLE_AFTER_SECONDS`] of failures).
pub async fn finish(db: &Db, due: &Due, attempt: &Attempt) -> Result<(Finished, bool), StoreError> {
    let mut tx = db.begin_write().await?;
    let held: Option<i64> =
        sqlx::query_scalar("SELECT attempts FROM webhook_deliveries WHERE id = $1 AND lease_holder = $2")
            .bind(&due.id)
            .bind(&due.claim)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(attempts) = held else {
        return Ok((Finished::Lost, false));
    };
    let end = attempt.started_at + attempt.duration_ms / 1000;
    sqlx::query(
        "INSERT INTO webhook_attempts (id, delivery_id, number, started_at, duration_ms, status, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(&due.id)
    .bind(attempts + 1)
    .bind(attempt.started_at)
    .bind(attempt.duration_ms)
    .bind(attempt.status.map(i64::from))
    .bind(&attempt.error)
    .execute(&mut *tx)
    .await?;
    let attempts = attempts + 1;
    let mut disabled = false;
    let finished = if attempt.succeeded() {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = $1, ended_at = $2, lease_holder = NULL, \
             lease_until = 0 WHERE id = $3",
        )
        .bind(attempts)
        .bind(end)
        .bind(&due.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
            .bind(&due.endpoint_id)
            .execute(&mut *tx)
            .await?;
        Finished::Delivered
    } else {
        let next = crate::platform::retry_in(attempts).map(|wait| end + wait);
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, ended_at = $4, \
             lease_holder = NULL, lease_until = 0 WHERE id = $5",
        )
        .bind(if next.is_some() { "pending" } else { "failed" })
        .bind(attempts)
        .bind(next.unwrap_or(end))
        .bind(next.is_none().then_some(end))
        .bind(&due.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2")
            .bind(attempt.started_at)
            .bind(&due.endpoint_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL AND failing_since <= $3",
        )
        .bind(end)
        .bind(&due.endpoint_id)
        .bind(end - DISABLE_AFTER_SECONDS)
        .execute(&mut *tx)
        .await?;
        disabled = done.rows_affected() == 1;
        next.map(Finished::Retry).unwrap_or(Finished::GaveUp)
    };
    tx.commit().await?;
    Ok((finished, disabled))
}

/// Forgets deliveries that ended (delivered or given up) more than `days` ago, with their attempts.
pub async fn purge(db: &Db, days: i64) -> Result<u64, StoreError> {
    let before = now() - days * 24 * 3600;
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries \
         WHERE state <> 'pending' AND ended_at < $1)",
    )
    .bind(before)
    .execute(db.pool())
    .await?;
    let done = sqlx::query("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND ended_at < $1")
        .bind(before)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// Re-seals every endpoint's secret under `new` (`onramp rotate-key`), in the caller's transaction.
pub(crate) async fn reseal(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    keys: &Keyring,
    new: &super::crypto::Cipher,
) -> Result<usize, StoreError> {
    let rows = sqlx::query("SELECT id, key_id, secret_key_id, secret_nonce, secret_ciphertext FROM webhook_endpoints")
        .fetch_all(&mut **tx)
        .await?;
    let mut count = 0;
    for row in &rows {
        let (id, key_id): (String, String) = (get(row, "id")?, get(row, "key_id")?);
        let sealed = Sealed {
            key_id: get(row, "secret_key_id")?,
            nonce: get(row, "secret_nonce")?,
            ciphertext: get(row, "secret_ciphertext")?,
        };
        if sealed.key_id == new.key_id() {
            continue;
        }
        count += 1;
        let text = keys.open_str(&sealed, &aad(&id, &key_id))?;
        let again = new.seal_str(secrecy::ExposeSecret::expose_secret(&text), &aad(&id, &key_id));
        sqlx::query(
            "UPDATE webhook_endpoints SET secret_key_id = $1, secret_nonce = $2, secret_ciphertext = $3 WHERE id = $4",
        )
        .bind(&again.key_id)
        .bind(&again.nonce)
        .bind(&again.ciphertext)
        .bind(&id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(count)
}
