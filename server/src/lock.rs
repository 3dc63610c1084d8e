//! Who may use the stored keys: every serving process holds a shared lock on its storage,
//! `onramp rotate-key` needs it exclusively. A rotation while a server runs would lose every token
//! the server seals with the old key after the rotation read the rows, so it is refused.
//!
//! SQLite: an OS file lock on `onramp.lock` in the data directory (released by the kernel when
//! the process dies, kill -9 included). PostgreSQL: a session-level advisory lock on a connection
//! held for the process's lifetime (released when the connection closes).

use app::store::{Db, DbKind};
use std::path::Path;

/// The advisory lock's key ("onramp" in ASCII).
const ADVISORY_KEY: i64 = 0x6f6e_7261_6d70;

/// Held for as long as it lives.
pub enum StorageLock {
    File(#[allow(dead_code)] std::fs::File),
    Postgres(#[allow(dead_code)] sqlx::pool::PoolConnection<sqlx::Any>),
}

/// What `onramp rotate-key` says when a server holds the storage.
pub const SERVER_RUNNING: &str = "an Onramp server is using this database. Stop every Onramp server that \
    uses it, run onramp rotate-key again, then start them: a server that kept running would go on \
    encrypting new tokens with the old key.";

/// For a serving process: waits while a key rotation runs, then holds a shared lock.
pub async fn shared(db: &Db, data_dir: &Path) -> Result<StorageLock, String> {
    match db.kind() {
        DbKind::Sqlite => {
            let file = lock_file(data_dir)?;
            if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock_shared() {
                tracing::warn!("onramp rotate-key is running: waiting for it to finish");
            }
            tokio::task::spawn_blocking(move || file.lock_shared().map(|_| file))
                .await
                .map_err(|e| e.to_string())?
                .map(StorageLock::File)
                .map_err(|e| format!("cannot lock {}: {e}", data_dir.display()))
        }
        DbKind::Postgres => {
            let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
            sqlx::query(&format!("SELECT 1 FROM (SELECT pg_advisory_lock_shared({ADVISORY_KEY})) AS locked"))
                .execute(&mut *conn)
                .await
                .map_err(|e| format!("cannot take the storage lock: {e}"))?;
            Ok(StorageLock::Postgres(conn))
        }
    }
}

/// For `onramp rotate-key`: the lock, exclusively, or an error that says to stop the servers.
pub async fn exclusive(db: &Db, data_dir: &Path) -> Result<StorageLock, String> {
    match db.kind() {
        DbKind::Sqlite => {
            let file = lock_file(data_dir)?;
            match file.try_lock() {
                Ok(()) => Ok(StorageLock::File(file)),
                Err(std::fs::TryLockError::WouldBlock) => Err(SERVER_RUNNING.to_owned()),
                Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", data_dir.display())),
            }
        }
        DbKind::Postgres => {
            let mut conn = db.pool().acquire().await.map_err(|e| e.to_string())?;
            let locked: bool = sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({ADVISORY_KEY})"))
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| format!("cannot take the storage lock: {e}"))?;
            if locked {
                Ok(StorageLock::Postgres(conn))
            } else {
                Err(SERVER_RUNNING.to_owned())
            }
        }
    }
}

fn lock_file(data_dir: &Path) -> Result<std::fs::File, String> {
    app::store::create_private_dir(data_dir).map_err(|e| e.to_string())?;
    let path = data_dir.join("onramp.lock");
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}
