//! Storage: embedded SQLite by default (`$ONRAMP_DATA_DIR/onramp.db`), PostgreSQL when
//! `DATABASE_URL=postgres://…`. One code path through sqlx's `Any` driver; queries use `$n`
//! placeholders, which both understand. Migrations run at start-up.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`: a crash at any moment leaves committed rows
//! and never half-written ones.

pub mod accounts;
pub mod connect_sessions;
pub mod crypto;
pub mod events;
pub mod integrations;
mod keys;
pub mod leases;
pub mod platform;
pub mod platform_events;
pub mod rotations;
pub mod scopes;
pub mod signup;
pub mod webhooks;
pub mod workspaces;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
    /// Parsed snapshots, shared by the handles of one pool (see [`scopes::SnapshotCache`]).
    snapshots: std::sync::Arc<scopes::SnapshotCache>,
    /// Wakes this process's webhook sender when a delivery is written (`jobs::deliver`); the
    /// sender also looks every few seconds, for rows other processes wrote.
    outbox: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    /// Too much work of one kind at once (password hashing): try again in a moment.
    #[error("busy: {0}")]
    Busy(&'static str),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// An earlier text of a migration that was edited after databases had been made with it, and the
/// statements that bring such a database to what the current text makes (see
/// `migrations/edited/README.md`).
pub struct Edited {
    pub version: i64,
    pub sql: &'static str,
    pub repair: &'static [&'static str],
}

const FLASHES_SQLITE: &str = "CREATE TABLE flashes (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) \
     ON DELETE CASCADE, key_id TEXT NOT NULL, token_nonce BLOB NOT NULL, token_ciphertext BLOB NOT NULL, \
     created_at BIGINT NOT NULL)";
const FLASHES_POSTGRES: &str = "CREATE TABLE flashes (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) \
     ON DELETE CASCADE, key_id TEXT NOT NULL, token_nonce BYTEA NOT NULL, token_ciphertext BYTEA NOT NULL, \
     created_at BIGINT NOT NULL)";
const RENAME_FLASH_COLUMNS: &[&str] = &[
    "ALTER TABLE flashes RENAME COLUMN nonce TO token_nonce",
    "ALTER TABLE flashes RENAME COLUMN ciphertext TO token_ciphertext",
];

pub const SQLITE_EDITED: &[Edited] = &[
    Edited {
        version: 1,
        sql: include_str!("../../migrations/edited/sqlite/0001_before_flashes.sql"),
        repair: &[FLASHES_SQLITE],
    },
    Edited {
        version: 1,
        sql: include_str!("../../migrations/edited/sqlite/0001_flashes_nonce_ciphertext.sql"),
        repair: RENAME_FLASH_COLUMNS,
    },
];
pub const POSTGRES_EDITED: &[Edited] = &[
    Edited {
        version: 1,
        sql: include_str!("../../migrations/edited/postgres/0001_before_flashes.sql"),
        repair: &[FLASHES_POSTGRES],
    },
    Edited {
        version: 1,
        sql: include_str!("../../migrations/edited/postgres/0001_flashes_nonce_ciphertext.sql"),
        repair: RENAME_FLASH_COLUMNS,
    },
];

/// The checksum sqlx records for a migration's text (SHA-384).
fn checksum(sql: &str) -> Vec<u8> {
    use sha2::{Digest, Sha384};
    Sha384::digest(sql.as_bytes()).to_vec()
}

/// A database made by an earlier text of an edited migration is brought to the current text's
/// schema and checksum, in one transaction per migration, before the migrations run (sqlx would
/// refuse it: "migration 1 was previously applied but has been modified").
async fn repair_edited_migrations(
    pool: &AnyPool,
    kind: DbKind,
    migrator: &sqlx::migrate::Migrator,
) -> Result<usize, StoreError> {
    let (exists, edited) = match kind {
        DbKind::Sqlite => {
            ("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'", SQLITE_EDITED)
        }
        DbKind::Postgres => (
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations' \
             AND table_schema = current_schema()",
            POSTGRES_EDITED,
        ),
    };
    let tables: i64 = sqlx::query_scalar(exists).fetch_one(pool).await?;
    if tables == 0 {
        return Ok(0); // a new database
    }
    let mut repaired = 0;
    for earlier in edited {
        let Some(current) = migrator.iter().find(|m| m.version == earlier.version) else { continue };
        let applied: Option<Vec<u8>> = sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = $1")
            .bind(earlier.version)
            .fetch_optional(pool)
            .await?;
        if applied != Some(checksum(earlier.sql)) {
            continue;
        }
        // Read, then written: the write lock first on SQLite (see `Db::begin_write`).
        let mut tx = match kind {
            DbKind::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            DbKind::Postgres => pool.begin().await?,
        };
        for statement in earlier.repair {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
            .bind(current.checksum.to_vec())
            .bind(earlier.version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            version = earlier.version,
            "brought a database made by an earlier text of a migration up to date"
        );
        repaired += 1;
    }
    Ok(repaired)
}

impl Db {
    /// `DATABASE_URL` when it is a PostgreSQL URL, else SQLite in `data_dir` (created if missing).
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Db, StoreError> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Db::connect(url).await,
            Some(url) if url.starts_with("sqlite:") => Db::connect(url).await,
            Some(_) => Err(StoreError::Config("DATABASE_URL must start with postgres:// or sqlite:".into())),
            None => {
                create_private_dir(data_dir)?;
                let path = data_dir.join("onramp.db");
                create_private_file(&path)?;
                Db::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
            }
        }
    }

    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("sqlite:") { DbKind::Sqlite } else { DbKind::Postgres };
        let options = AnyPoolOptions::new().max_connections(if kind == DbKind::Sqlite { 4 } else { 10 });
        let options = if kind == DbKind::Sqlite {
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;")
                        .await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        if kind == DbKind::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL;").await?;
        }
        let db = Db { pool, kind, snapshots: Default::default(), outbox: Default::default() };
        let migrator = match kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        repair_edited_migrations(&db.pool, kind, migrator).await?;
        migrator.run(&db.pool).await?;
        Ok(db)
    }

    /// The parsed snapshots this process keeps.
    pub fn snapshots(&self) -> &scopes::SnapshotCache {
        &self.snapshots
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that may read and then write. On SQLite it starts with `BEGIN IMMEDIATE`,
    /// taking the write lock before the first read: a deferred `BEGIN` that has read cannot
    /// upgrade once another connection committed meanwhile, and fails at once with "database is
    /// locked" whatever the busy timeout (this lost rotated tokens). Waiting for the lock is what
    /// the busy timeout is for. On PostgreSQL an ordinary `BEGIN`: its row locks and the queries'
    /// own `WHERE` conditions serialise the writers.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.kind {
            DbKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            DbKind::Postgres => self.pool.begin().await?,
        })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The webhook sender's wake-up (see the field).
    pub fn outbox(&self) -> &tokio::sync::Notify {
        &self.outbox
    }
}

/// Creates the data directory readable by its owner only (0700). An existing one is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))
}

/// Creates the SQLite file readable by its owner only (0600) before SQLite opens it (SQLite gives
/// its -wal and -shm files the same permissions). An existing file is left as it is.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Config(format!("cannot create {}: {e}", path.display()))),
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as RFC 3339 (`2026-12-04T00:45:31Z`), as `/api/v1`, its webhooks and `onramp
/// platform-key list` write times.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The address of the account `u` as shown and mailed: for a platform's end user, the one its
/// platform gave (see `connect_sessions`).
pub(crate) const EMAIL_OF_U: &str =
    "COALESCE((SELECT pe.email FROM platform_end_users pe WHERE pe.user_id = u.id), u.email)";

/// A new random id (UUID v4, simple form).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A random secret of 32 bytes, URL-safe base64: session ids, API tokens.
pub fn random_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256, hex: how session ids and API tokens are stored (never in the clear).
pub fn hash_secret(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn get<T>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    sqlx::Row::try_get(row, column)
}

#[cfg(test)]
pub(crate) mod test_db {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_directory_and_database_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let db = Db::open(None, &dir).await.unwrap();
        sqlx::query("SELECT 1").execute(db.pool()).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("onramp.db")), 0o600);
        assert_eq!(mode(&dir.join("onramp.db-wal")), 0o600);
    }

    #[test]
    fn checksums_are_the_ones_sqlx_records() {
        let current = include_str!("../../migrations/sqlite/0001_accounts_and_integrations.sql");
        let recorded = SQLITE_MIGRATIONS.iter().find(|m| m.version == 1).unwrap();
        assert_eq!(checksum(current), recorded.checksum.to_vec());
        for earlier in SQLITE_EDITED.iter().chain(POSTGRES_EDITED) {
            assert_ne!(checksum(earlier.sql), recorded.checksum.to_vec(), "an earlier text differs");
        }
    }

    /// A fresh SQLite database in a temporary directory (kept alive by the returned guard).
    pub async fn sqlite() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(None, dir.path()).await.unwrap();
        (db, dir)
    }
}
