//! The rotation ledger: a rotation is written down before GitLab is asked, at most once per
//! (connection, token id). The unique index on that pair is the lease several Onramp processes
//! share: whoever inserts the row is the one process that may send `self/rotate` for that token.
//! A row left `sending` (the process died, or never heard back) is never sent again; once its
//! lease ran out, [`claim_stale`] hands it to one process, which asks GitLab whether the old token
//! still lives.

use super::crypto::Keyring;
use super::keys::integration_aad;
use super::{get, new_id, now, Db, StoreError};
use crate::gitlab::token::GitlabToken;
use crate::integration::Rotation;
use sqlx::any::AnyRow;

const COLUMNS: &str =
    "id, integration_id, workspace_id, token_id, state, trigger, new_expires_at, message, started_at, finished_at";

fn rotation(row: &AnyRow) -> Result<Rotation, StoreError> {
    Ok(Rotation {
        id: get(row, "id")?,
        integration_id: get(row, "integration_id")?,
        workspace_id: get(row, "workspace_id")?,
        token_id: get(row, "token_id")?,
        state: get(row, "state")?,
        trigger: get(row, "trigger")?,
        new_expires_at: get(row, "new_expires_at")?,
        message: get(row, "message")?,
        started_at: get(row, "started_at")?,
        finished_at: get(row, "finished_at")?,
    })
}

/// Writes down that this process is about to rotate token `token_id` of the connection, and
/// holds it for `lease_seconds`. `None` when the token already has a rotation (done, lost, under
/// way in another process, or refused): then nothing may be sent. The one exception is a rotation
/// found `kept` (its answer was lost but the old token still worked, so GitLab rotated nothing):
/// that row is taken up again.
pub async fn begin(
    db: &Db,
    workspace_id: &str,
    integration_id: &str,
    token_id: i64,
    trigger: &str,
    lease_seconds: i64,
) -> Result<Option<String>, StoreError> {
    let id = new_id();
    let now = now();
    let inserted = sqlx::query(
        "INSERT INTO rotations (id, integration_id, workspace_id, token_id, state, trigger, lease_until, started_at) \
         SELECT $1, id, workspace_id, $2, 'sending', $3, $4, $5 FROM integrations \
         WHERE id = $6 AND workspace_id = $7 AND token_id = $2",
    )
    .bind(&id)
    .bind(token_id)
    .bind(trigger)
    .bind(now + lease_seconds)
    .bind(now)
    .bind(integration_id)
    .bind(workspace_id)
    .execute(db.pool())
    .await;
    match inserted {
        Ok(done) if done.rows_affected() == 1 => return Ok(Some(id)),
        Ok(_) => return Ok(None),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
        Err(e) => return Err(e.into()),
    }
    let retaken = sqlx::query(
        "UPDATE rotations SET state = 'sending', trigger = $1, lease_until = $2, started_at = $3, finished_at = NULL, \
         message = '' WHERE integration_id = $4 AND workspace_id = $5 AND token_id = $6 AND state = 'kept'",
    )
    .bind(trigger)
    .bind(now + lease_seconds)
    .bind(now)
    .bind(integration_id)
    .bind(workspace_id)
    .bind(token_id)
    .execute(db.pool())
    .await?;
    if retaken.rows_affected() != 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT id FROM rotations WHERE integration_id = $1 AND token_id = $2")
        .bind(integration_id)
        .bind(token_id)
        .fetch_one(db.pool())
        .await?;
    Ok(Some(get(&row, "id")?))
}

/// What a rotation that GitLab answered brought.
pub struct NewToken<'a> {
    pub token: &'a GitlabToken,
    pub id: Option<i64>,
    pub expires_at: Option<String>,
    /// Today, `YYYY-MM-DD`: the new token's creation date.
    pub created_on: String,
}

/// Stores the rotated token in place of the old one and closes the rotation, in one transaction.
/// The connection is changed only while it still holds the token that was rotated (a token
/// replaced by someone meanwhile stays); false when it no longer does.
pub async fn rotated(
    db: &Db,
    keys: &Keyring,
    rotation_id: &str,
    workspace_id: &str,
    integration_id: &str,
    old_token_id: i64,
    new: &NewToken<'_>,
) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(
        "SELECT base_url, extra_ca_pem FROM integrations WHERE id = $1 AND workspace_id = $2 AND token_id = $3",
    )
    .bind(integration_id)
    .bind(workspace_id)
    .bind(old_token_id)
    .fetch_optional(&mut *tx)
    .await?;
    let stored = match row {
        Some(row) => {
            let (base_url, ca): (String, String) = (get(&row, "base_url")?, get(&row, "extra_ca_pem")?);
            let sealed = keys.current.seal(new.token, &integration_aad(integration_id, workspace_id, &base_url, &ca));
            let now = now();
            sqlx::query(
                "UPDATE integrations SET key_id = $1, token_nonce = $2, token_ciphertext = $3, token_last4 = $4, \
                 token_id = $5, token_created_at = $6, expires_at = COALESCE($7, expires_at), rotated_at = $8, \
                 updated_at = $8, aad_version = 2 WHERE id = $9 AND workspace_id = $10 AND token_id = $11",
            )
            .bind(&sealed.key_id)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(new.token.last_four())
            .bind(new.id)
            .bind(&new.created_on)
            .bind(&new.expires_at)
            .bind(now)
            .bind(integration_id)
            .bind(workspace_id)
            .bind(old_token_id)
            .execute(&mut *tx)
            .await?;
            true
        }
        None => false,
    };
    let message =
        if stored { "" } else { "The connection's token was replaced while it rotated; the new one was not kept." };
    finish_in(&mut tx, rotation_id, "rotated", message, new.expires_at.as_deref()).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Closes a rotation as `lost`, `refused` or `kept`, with what to tell people.
pub async fn finish(db: &Db, rotation_id: &str, state: &str, message: &str) -> Result<(), StoreError> {
    let mut tx = db.begin_write().await?;
    finish_in(&mut tx, rotation_id, state, message, None).await?;
    tx.commit().await?;
    Ok(())
}

async fn finish_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rotation_id: &str,
    state: &str,
    message: &str,
    new_expires_at: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rotations SET state = $1, message = $2, new_expires_at = $3, finished_at = $4 \
         WHERE id = $5 AND state = 'sending'",
    )
    .bind(state)
    .bind(message)
    .bind(new_expires_at)
    .bind(now())
    .bind(rotation_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rotations still `sending` whose lease ran out: their process died or gave up without an
/// answer. Each must be settled by asking GitLab, never by sending it again.
pub async fn stale(db: &Db) -> Result<Vec<Rotation>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rotations WHERE state = 'sending' AND lease_until < $1 ORDER BY started_at"
    ))
    .bind(now())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(rotation).collect()
}

/// Takes a stale rotation for `lease_seconds` to settle it: one atomic update, so of several
/// processes one gets `true`.
pub async fn claim_stale(db: &Db, rotation_id: &str, lease_seconds: i64) -> Result<bool, StoreError> {
    let now = now();
    let done =
        sqlx::query("UPDATE rotations SET lease_until = $1 WHERE id = $2 AND state = 'sending' AND lease_until < $3")
            .bind(now + lease_seconds)
            .bind(rotation_id)
            .bind(now)
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The connection's latest rotation, if it ever had one.
pub async fn latest(db: &Db, workspace_id: &str, integration_id: &str) -> Result<Option<Rotation>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rotations WHERE integration_id = $1 AND workspace_id = $2 \
         ORDER BY started_at DESC, id DESC LIMIT 1"
    ))
    .bind(integration_id)
    .bind(workspace_id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(rotation).transpose()
}

/// Every rotation of a connection, newest first (tests and the API).
pub async fn all(db: &Db, workspace_id: &str, integration_id: &str) -> Result<Vec<Rotation>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rotations WHERE integration_id = $1 AND workspace_id = $2 \
         ORDER BY started_at DESC, id DESC"
    ))
    .bind(integration_id)
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(rotation).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crypto::Cipher;
    use crate::store::integrations::tests::{account, report, saved};
    use crate::store::integrations::{save, with_token};
    use crate::store::test_db;

    /// GitLab has issued a new token; storing it must not fail because another connection of the
    /// pool committed a write meanwhile (an audit insert, a discovery write, the losing "Rotate
    /// now" of a double click). With a deferred `BEGIN`, `rotated` read first and could then not
    /// upgrade: "database is locked" at once, and the new token was dropped.
    #[tokio::test]
    async fn a_rotated_token_is_kept_while_another_connection_writes() {
        let (db, _dir) = test_db::sqlite().await;
        let keys = Keyring::new(Cipher::generate().1);
        let (jane, ws) = account(&db, "jane@example.com").await;
        let mut checked = report("2027-01-01");
        checked.token.as_mut().unwrap().id = Some(7);
        let old = GitlabToken::parse("glpat-old-token-0007").unwrap();
        let conn = saved(save(&db, &keys, &ws, &jane.id, &checked, &old, "").await.unwrap());
        let rotation = begin(&db, &ws, &conn.id, 7, "manual", 300).await.unwrap().unwrap();

        // Another pooled connection holds the write lock across GitLab's answer.
        let mut other = db.begin_write().await.unwrap();
        sqlx::query("UPDATE integrations SET updated_at = updated_at + 1 WHERE id = $1")
            .bind(&conn.id)
            .execute(&mut *other)
            .await
            .unwrap();
        let store = {
            let (db, keys, ws, id, rotation) =
                (db.clone(), keys.clone(), ws.clone(), conn.id.clone(), rotation.clone());
            tokio::spawn(async move {
                let new = GitlabToken::parse("glpat-new-token-0008").unwrap();
                let answer = NewToken {
                    token: &new,
                    id: Some(8),
                    expires_at: Some("2027-04-01".into()),
                    created_on: "2027-01-01".into(),
                };
                rotated(&db, &keys, &rotation, &ws, &id, 7, &answer).await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        other.commit().await.unwrap();

        assert!(store.await.unwrap().expect("stored, not 'database is locked'"), "the connection took the new token");
        let (_, token, _) = with_token(&db, &keys, &ws, &conn.id).await.unwrap().unwrap();
        assert_eq!(token.expose(), "glpat-new-token-0008");
        assert_eq!(all(&db, &ws, &conn.id).await.unwrap()[0].state, "rotated");
    }
}
