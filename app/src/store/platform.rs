//! Platform keys and the workspaces they reach (issue 22). A key is stored as its SHA-256 only;
//! the secret is returned once, by [`create_key`]. An instance-level key (no workspace) reaches the
//! workspaces it created, its tenants (`platform_tenants`); a workspace-level key only its own.
//! Every lookup here is scoped by the key, so another platform's workspace is never found.

use super::{get, hash_secret, new_id, now, random_secret, Db, StoreError};
use crate::account::token_name;
use crate::platform::{ReturnOrigin, Scopes, PLATFORM_KEY_PREFIX};
use sqlx::any::AnyRow;

/// A platform key as listed and as the API sees its caller (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformKey {
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    pub return_origins: Vec<ReturnOrigin>,
    /// `None`: an instance-level key.
    pub workspace_id: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// At most this many live keys per workspace (and as many instance-level keys).
pub const MAX_KEYS: i64 = 20;

/// A key to make.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub scopes: Scopes,
    pub return_origins: Vec<ReturnOrigin>,
    pub workspace_id: Option<&'a str>,
}

const COLUMNS: &str = "id, name, scopes, return_origins, workspace_id, created_at, last_used_at, revoked_at";

fn key(row: &AnyRow) -> Result<PlatformKey, StoreError> {
    let origins: String = get(row, "return_origins")?;
    Ok(PlatformKey {
        id: get(row, "id")?,
        name: get(row, "name")?,
        scopes: Scopes::from_stored(&get::<String>(row, "scopes")?),
        // Stored only after ReturnOrigin::parse; one that no longer parses is dropped.
        return_origins: origins.split(' ').filter_map(|o| ReturnOrigin::parse(o).ok()).collect(),
        workspace_id: get(row, "workspace_id")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

/// Makes a key; its name as [`token_name`] makes it (one visible line, at most 100 characters),
/// at most [`MAX_KEYS`] live ones per workspace or instance (counted and inserted in one write
/// transaction). `Ok(Err(why))` for a refusal the caller shows as it is.
pub async fn create_key(db: &Db, new: NewKey<'_>) -> Result<Result<(PlatformKey, String), String>, StoreError> {
    let name = match token_name(new.name) {
        Ok(name) => name,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut tx = db.begin_write().await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM platform_keys WHERE revoked_at IS NULL AND \
         ((workspace_id IS NULL AND CAST($1 AS TEXT) IS NULL) OR workspace_id = CAST($1 AS TEXT))",
    )
    .bind(new.workspace_id)
    .fetch_one(&mut *tx)
    .await?;
    if live >= MAX_KEYS {
        return Ok(Err(format!(
            "There are {MAX_KEYS} live platform keys here, the most there may be: revoke one first."
        )));
    }
    let secret = format!("{PLATFORM_KEY_PREFIX}{}", random_secret());
    let made = PlatformKey {
        id: new_id(),
        name,
        scopes: new.scopes,
        return_origins: new.return_origins,
        workspace_id: new.workspace_id.map(str::to_owned),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    let origins = made.return_origins.iter().map(ReturnOrigin::as_str).collect::<Vec<_>>().join(" ");
    sqlx::query(
        "INSERT INTO platform_keys (id, name, key_hash, scopes, return_origins, workspace_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&made.id)
    .bind(&made.name)
    .bind(hash_secret(&secret))
    .bind(made.scopes.to_stored())
    .bind(origins)
    .bind(&made.workspace_id)
    .bind(made.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok((made, secret)))
}

/// The keys of a workspace, or the instance-level keys (`None`), oldest first, revoked ones too.
pub async fn list_keys(db: &Db, workspace_id: Option<&str>) -> Result<Vec<PlatformKey>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM platform_keys WHERE (workspace_id IS NULL AND CAST($1 AS TEXT) IS NULL) OR workspace_id = CAST($1 AS TEXT) \
         ORDER BY created_at, id"
    ))
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(key).collect()
}

/// Revokes a live key of this workspace (or an instance-level key) named by its id or its name;
/// the key stops working at once. False when there is no such live key.
pub async fn revoke_key(db: &Db, workspace_id: Option<&str>, id_or_name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE platform_keys SET revoked_at = $1 WHERE revoked_at IS NULL AND (id = $2 OR name = $2) AND \
         ((workspace_id IS NULL AND CAST($3 AS TEXT) IS NULL) OR workspace_id = CAST($3 AS TEXT))",
    )
    .bind(now())
    .bind(id_or_name)
    .bind(workspace_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The live key with this secret, its last use recorded; `None` for an unknown or revoked key.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<PlatformKey>, StoreError> {
    if !secret.starts_with(PLATFORM_KEY_PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let hash = hash_secret(secret);
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM platform_keys WHERE key_hash = $1 AND revoked_at IS NULL"))
        .bind(&hash)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut found = key(&row)?;
    let at = now();
    // At most one write a minute per key: a busy collector does not turn every read into a write.
    if found.last_used_at.is_none_or(|t| at - t >= 60) {
        sqlx::query("UPDATE platform_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(&found.id)
            .execute(db.pool())
            .await?;
        found.last_used_at = Some(at);
    }
    Ok(Some(found))
}

/// Is there a workspace with this id (`onramp platform-key create --workspace`)?
pub async fn workspace_exists(db: &Db, id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?
        > 0)
}

/// A workspace as a platform sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// The platform's own id for it (instance-level keys; `None` for a workspace-level key).
    pub external_id: Option<String>,
    pub created_at: i64,
}

fn tenant(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: get(row, "id")?,
        name: get(row, "name")?,
        external_id: get(row, "external_id")?,
        created_at: get(row, "created_at")?,
    })
}

/// The workspaces a key reaches, ordered by id, those after `after`, at most `limit`.
pub async fn tenants(db: &Db, key: &PlatformKey, after: &str, limit: i64) -> Result<Vec<Tenant>, StoreError> {
    let rows = match &key.workspace_id {
        Some(own) => {
            sqlx::query(
                "SELECT w.id, w.name, CAST(NULL AS TEXT) AS external_id, w.created_at FROM workspaces w \
                 WHERE w.id = $1 AND w.id > $2",
            )
            .bind(own)
            .bind(after)
            .fetch_all(db.pool())
            .await?
        }
        None => {
            sqlx::query(
                "SELECT w.id, w.name, t.external_id, w.created_at FROM platform_tenants t \
                 JOIN workspaces w ON w.id = t.workspace_id WHERE t.key_id = $1 AND w.id > $2 ORDER BY w.id LIMIT $3",
            )
            .bind(&key.id)
            .bind(after)
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
    };
    rows.iter().map(tenant).collect()
}

/// The workspace with this id, when the key reaches it; `None` otherwise (answered as 404).
pub async fn tenant_of(db: &Db, key: &PlatformKey, workspace_id: &str) -> Result<Option<Tenant>, StoreError> {
    let row = match &key.workspace_id {
        Some(own) if own != workspace_id => return Ok(None),
        Some(own) => {
            sqlx::query("SELECT id, name, CAST(NULL AS TEXT) AS external_id, created_at FROM workspaces WHERE id = $1")
                .bind(own)
                .fetch_optional(db.pool())
                .await?
        }
        // One row by the primary key's (key_id, workspace_id) index, however many tenants.
        None => {
            sqlx::query(
                "SELECT w.id, w.name, t.external_id, w.created_at FROM platform_tenants t \
                 JOIN workspaces w ON w.id = t.workspace_id WHERE t.key_id = $1 AND t.workspace_id = $2",
            )
            .bind(&key.id)
            .bind(workspace_id)
            .fetch_optional(db.pool())
            .await?
        }
    };
    row.as_ref().map(tenant).transpose()
}

/// The addresses of the owners of a workspace-level key's workspace (none for an instance-level
/// key: its platform runs the instance).
pub async fn owners_of_key(db: &Db, key_id: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {} AS email FROM platform_keys k JOIN memberships m ON m.workspace_id = k.workspace_id \
         JOIN users u ON u.id = m.user_id WHERE k.id = $1 AND m.role = 'owner' ORDER BY email",
        super::EMAIL_OF_U
    ))
    .bind(key_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| Ok(get(r, "email")?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::integrations::tests::account;
    use crate::store::test_db;

    async fn db() -> (tempfile::TempDir, Db) {
        let (db, dir) = test_db::sqlite().await;
        (dir, db)
    }

    fn new<'a>(name: &'a str, workspace_id: Option<&'a str>) -> NewKey<'a> {
        NewKey {
            name,
            scopes: Scopes::parse("connections:read").unwrap(),
            return_origins: vec![ReturnOrigin::parse("https://platform.example.com").unwrap()],
            workspace_id,
        }
    }

    #[tokio::test]
    async fn keys_are_hashed_scoped_and_revocable() {
        let (_dir, db) = db().await;
        let (made, secret) = create_key(&db, new("DevDynamics", None)).await.unwrap().unwrap();
        assert!(secret.starts_with(PLATFORM_KEY_PREFIX));
        let stored: String =
            sqlx::query_scalar("SELECT key_hash FROM platform_keys").fetch_one(db.pool()).await.unwrap();
        assert_eq!(stored, hash_secret(&secret));
        let found = authenticate(&db, &secret).await.unwrap().unwrap();
        assert_eq!(found.id, made.id);
        assert!(found.last_used_at.is_some());
        assert_eq!(found.return_origins[0].as_str(), "https://platform.example.com");
        assert_eq!(authenticate(&db, "onp_nope").await.unwrap(), None);
        assert_eq!(authenticate(&db, "onr_nope").await.unwrap(), None);

        // A workspace's keys and the instance's are apart.
        let (_, ws) = account(&db, "o@example.com").await;
        let (team, _) = create_key(&db, new("collector", Some(&ws))).await.unwrap().unwrap();
        assert_eq!(list_keys(&db, None).await.unwrap().len(), 1);
        assert_eq!(list_keys(&db, Some(&ws)).await.unwrap()[0].id, team.id);
        assert!(!revoke_key(&db, Some(&ws), &made.id).await.unwrap(), "another scope's key was revoked");
        assert!(revoke_key(&db, None, "DevDynamics").await.unwrap());
        assert!(!revoke_key(&db, None, "DevDynamics").await.unwrap());
        assert_eq!(authenticate(&db, &secret).await.unwrap(), None);
        assert!(list_keys(&db, None).await.unwrap()[0].revoked_at.is_some());

        // A workspace-level key reaches its workspace only; an instance key no workspace it did not create.
        assert_eq!(tenants(&db, &team, "", 50).await.unwrap()[0].id, ws);
        assert!(tenant_of(&db, &team, "other").await.unwrap().is_none());
        assert!(tenant_of(&db, &made, &ws).await.unwrap().is_none());
        assert!(tenants(&db, &made, "", 50).await.unwrap().is_empty());

        // A tenant of one instance-level key is found through it, and only through it.
        let (other, _) = create_key(&db, new("LinearB", None)).await.unwrap().unwrap();
        sqlx::query(
            "INSERT INTO platform_tenants (key_id, external_id, workspace_id, created_at) VALUES ($1, 'team-7', $2, 0)",
        )
        .bind(&other.id)
        .bind(&ws)
        .execute(db.pool())
        .await
        .unwrap();
        let found = tenant_of(&db, &other, &ws).await.unwrap().unwrap();
        assert_eq!((found.id.as_str(), found.external_id.as_deref()), (ws.as_str(), Some("team-7")));
        assert_eq!(tenants(&db, &other, "", 50).await.unwrap(), vec![found]);
        assert!(tenants(&db, &other, &ws, 50).await.unwrap().is_empty(), "after the last one");
        assert!(tenant_of(&db, &made, &ws).await.unwrap().is_none(), "another platform's tenant");
    }

    #[tokio::test]
    async fn names_and_counts_are_limited() {
        let (_dir, db) = db().await;
        assert!(create_key(&db, new("two\nlines", None)).await.unwrap().is_err());
        for i in 0..MAX_KEYS {
            create_key(&db, new(&format!("k{i}"), None)).await.unwrap().unwrap();
        }
        assert!(create_key(&db, new("one more", None)).await.unwrap().unwrap_err().contains("revoke one"));
        assert!(revoke_key(&db, None, "k0").await.unwrap());
        create_key(&db, new("one more", None)).await.unwrap().unwrap();
    }
}
