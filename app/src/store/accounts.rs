//! Accounts: users (passwords hashed with Argon2id), server-side sessions and Onramp API tokens.
//! Session ids and API tokens are random 256-bit secrets; only their SHA-256 is stored.

use super::crypto::Keyring;
use super::{get, hash_secret, new_id, now, random_secret, Db, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

pub use crate::account::{token_name, Email, EmailProblem, TokenNameProblem, MAX_API_TOKENS, TOKEN_NAME_MAX};

/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 14 * 24 * 3600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    EmailInvalid(#[from] EmailProblem),
    #[error("An account with this email address already exists: log in instead")]
    EmailTaken,
    #[error("Your password must be at least 10 characters long")]
    PasswordTooShort,
    #[error("Your password must be at most 200 characters long")]
    PasswordTooLong,
}

pub fn check_password(password: &str) -> Result<(), AccountError> {
    match password.chars().count() {
        n if n < 10 => Err(AccountError::PasswordTooShort),
        n if n > 200 => Err(AccountError::PasswordTooLong),
        _ => Ok(()),
    }
}

/// Argon2id takes ~19 MiB and tens of milliseconds of one core per hash: at most this many run
/// at once (`ONRAMP_HASHES_AT_ONCE`), so a flood of sign-ups or log-ins costs a bounded amount of
/// memory.
pub const HASHES_AT_ONCE: usize = 2;
/// How long a request waits for a free hashing slot before it is told to come back (503);
/// `ONRAMP_HASH_WAIT_MS` overrides it.
pub const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
static HASHING: std::sync::LazyLock<HashGate> = std::sync::LazyLock::new(|| {
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0);
    HashGate::new(
        number("ONRAMP_HASHES_AT_ONCE").map_or(HASHES_AT_ONCE, |n| usize::try_from(n).unwrap_or(HASHES_AT_ONCE)),
        number("ONRAMP_HASH_WAIT_MS").map_or(HASH_WAIT, std::time::Duration::from_millis),
    )
});

/// A bound on password hashes running at once; the process has one ([`HASHING`]).
pub struct HashGate {
    slots: tokio::sync::Semaphore,
    wait: std::time::Duration,
}

impl HashGate {
    pub fn new(slots: usize, wait: std::time::Duration) -> Self {
        HashGate { slots: tokio::sync::Semaphore::new(slots), wait }
    }

    /// Runs `work` on a blocking thread when a slot is free within the gate's wait, else
    /// [`StoreError::Busy`].
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
        let busy = || StoreError::Busy("password hashing");
        let permit =
            tokio::time::timeout(self.wait, self.slots.acquire()).await.map_err(|_| busy())?.map_err(|_| busy())?;
        let result = tokio::task::spawn_blocking(work).await;
        drop(permit);
        result.map_err(|_| busy())
    }
}

pub(super) async fn hash_password(password: String) -> Result<String, StoreError> {
    HASHING
        .run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
        })
        .await?
        .map_err(|e| StoreError::Config(format!("password hashing: {e}")))
}

/// Verifies against `hash`, or, without one, against a fixed hash anyway, so that the time taken
/// does not tell who has an account.
pub(super) async fn verify_password(password: String, hash: Option<String>) -> Result<bool, StoreError> {
    HASHING
        .run(move || {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| {
                DUMMY
                    .get_or_init(|| {
                        let salt = SaltString::encode_b64(b"onramp-dummy-salt").expect("a valid salt");
                        Argon2::default().hash_password(b"no account", &salt).expect("hashes").to_string()
                    })
                    .clone()
            });
            let ok = PasswordHash::new(&hash)
                .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok());
            known && ok
        })
        .await
}

pub(super) async fn user_by_email(db: &Db, email: &str) -> Result<Option<(User, String)>, StoreError> {
    let row = sqlx::query("SELECT id, email, password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| {
        Ok((User { id: get(&row, "id")?, email: get(&row, "email")? }, get::<String>(&row, "password_hash")?))
    })
    .transpose()
}

/// The user with this email and password, if they match.
pub async fn verify_login(db: &Db, email: &str, password: &str) -> Result<Option<User>, StoreError> {
    let email = email.trim().to_lowercase();
    // Longer than any address or password that can exist here: no account, and no hash needed
    // to say so (the length is in the request for anyone to see).
    if email.len() > 254 || password.chars().count() > 200 {
        return Ok(None);
    }
    let (user, hash) = match user_by_email(db, &email).await? {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let ok = verify_password(password.to_owned(), hash).await?;
    Ok(user.filter(|_| ok))
}

/// Starts a session; returns the secret for the cookie.
pub async fn create_session(db: &Db, user_id: &str) -> Result<String, StoreError> {
    create_session_for(db, user_id, None).await
}

/// Starts a session, opened by a platform's connect session when `connect_session` names one
/// (the pages then say which platform sent the reader); returns the secret for the cookie.
pub async fn create_session_for(db: &Db, user_id: &str, connect_session: Option<&str>) -> Result<String, StoreError> {
    let secret = random_secret();
    let now = now();
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, connect_session_id) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_secret(&secret))
    .bind(user_id)
    .bind(now)
    .bind(now + SESSION_SECONDS)
    .bind(connect_session)
    .execute(db.pool())
    .await?;
    Ok(secret)
}

pub async fn session_user(db: &Db, secret: &str) -> Result<Option<User>, StoreError> {
    Ok(session(db, secret).await?.map(|(user, _)| user))
}

/// The live session's account, and the connect session that opened it, if one did.
pub async fn session(db: &Db, secret: &str) -> Result<Option<(User, Option<String>)>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT u.id, {} AS email, s.connect_session_id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2",
        super::EMAIL_OF_U
    ))
    .bind(hash_secret(secret))
    .bind(now())
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok((User { id: get(&row, "id")?, email: get(&row, "email")? }, get(&row, "connect_session_id")?)))
        .transpose()
}

pub async fn delete_session(db: &Db, secret: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(hash_secret(secret)).execute(db.pool()).await?;
    Ok(())
}

/// Ends every session of the user ("log out everywhere"); returns how many there were.
pub async fn delete_sessions_of(db: &Db, user_id: &str) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(db.pool()).await?;
    Ok(done.rows_affected())
}

/// Deletes expired sessions and flashes nobody came back for (the background task, hourly).
pub async fn purge_expired(db: &Db) -> Result<u64, StoreError> {
    let now = now();
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(db.pool()).await?;
    let flashes = sqlx::query("DELETE FROM flashes WHERE created_at < $1")
        .bind(now - FLASH_TTL_SECONDS)
        .execute(db.pool())
        .await?;
    Ok(sessions.rows_affected() + flashes.rows_affected())
}

/// An Onramp API token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The prefix of Onramp API tokens, so they are recognisable (and scannable) in leaks.
pub const API_TOKEN_PREFIX: &str = "onr_";

/// Why a new API token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("{0}")]
    Name(TokenNameProblem),
    #[error("You have {0} API tokens, the most an account may have: revoke one you no longer use first.")]
    TooMany(i64),
}

/// Creates an API token for a person (the settings page, `POST /api/tokens/create`): its name as
/// [`token_name`] makes it, at most [`MAX_API_TOKENS`] per account (counted and inserted in one
/// write transaction, so parallel requests cannot pass the cap). The secret is returned once and
/// only its hash is kept.
pub async fn create_api_token(
    db: &Db,
    user_id: &str,
    name: &str,
) -> Result<Result<(ApiToken, String), TokenRefused>, StoreError> {
    let name = match token_name(name) {
        Ok(name) => name,
        Err(e) => return Ok(Err(TokenRefused::Name(e))),
    };
    let mut tx = db.begin_write().await?;
    // Serialise this account's creations (PostgreSQL: the row lock; SQLite: one writer).
    sqlx::query("UPDATE users SET email = email WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if held >= MAX_API_TOKENS {
        return Ok(Err(TokenRefused::TooMany(MAX_API_TOKENS)));
    }
    let made = insert_api_token(&mut tx, user_id, &name).await?;
    tx.commit().await?;
    Ok(Ok(made))
}

async fn insert_api_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    name: &str,
) -> Result<(ApiToken, String), StoreError> {
    let secret = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let token = ApiToken { id: new_id(), name: name.to_owned(), created_at: now(), last_used_at: None };
    sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&token.id)
        .bind(user_id)
        .bind(&token.name)
        .bind(hash_secret(&secret))
        .bind(token.created_at)
        .execute(&mut **tx)
        .await?;
    Ok((token, secret))
}

pub async fn list_api_tokens(db: &Db, user_id: &str) -> Result<Vec<ApiToken>, StoreError> {
    let rows =
        sqlx::query("SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = $1 ORDER BY created_at")
            .bind(user_id)
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|row| {
            Ok(ApiToken {
                id: get(row, "id")?,
                name: get(row, "name")?,
                created_at: get(row, "created_at")?,
                last_used_at: get(row, "last_used_at")?,
            })
        })
        .collect()
}

/// Revokes one of the user's tokens; false when the user has no such token.
pub async fn revoke_api_token(db: &Db, user_id: &str, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn api_token_user(db: &Db, secret: &str) -> Result<Option<User>, StoreError> {
    let hash = hash_secret(secret);
    let row =
        sqlx::query("SELECT u.id, u.email FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1")
            .bind(&hash)
            .fetch_optional(db.pool())
            .await?;
    let Some(row) = row else { return Ok(None) };
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
        .bind(now())
        .bind(&hash)
        .execute(db.pool())
        .await?;
    Ok(Some(User { id: get(&row, "id")?, email: get(&row, "email")? }))
}

/// Is `secret` an API token with the admin flag (`onramp admin-token`)?
pub async fn api_token_is_admin(db: &Db, secret: &str) -> Result<bool, StoreError> {
    let admin: Option<i64> = sqlx::query_scalar("SELECT admin FROM api_tokens WHERE token_hash = $1")
        .bind(hash_secret(secret))
        .fetch_optional(db.pool())
        .await?;
    Ok(admin == Some(1))
}

/// Creates an admin API token for the account `email` (the command line's `onramp admin-token`):
/// it reads operator endpoints such as `/metrics`. `None` when there is no such account.
pub async fn create_admin_token(db: &Db, email: &str, name: &str) -> Result<Option<String>, StoreError> {
    let Some((user, _)) = user_by_email(db, &email.trim().to_lowercase()).await? else { return Ok(None) };
    // The operator's own command: not counted against the account's cap.
    let name: String =
        name.trim().chars().filter(|c| !crate::workspace::is_invisible(*c)).take(TOKEN_NAME_MAX).collect();
    let mut tx = db.begin_write().await?;
    let (token, secret) = insert_api_token(&mut tx, &user.id, &name).await?;
    sqlx::query("UPDATE api_tokens SET admin = 1 WHERE id = $1").bind(&token.id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some(secret))
}

/// How long a secret waits to be shown once.
pub const FLASH_TTL_SECONDS: i64 = 10 * 60;

/// Keeps a secret to show once on the page after a redirect (a new API token).
pub async fn put_flash(db: &Db, keys: &Keyring, user_id: &str, secret: &str) -> Result<String, StoreError> {
    let id = new_id();
    let sealed = keys.current.seal_str(secret, &super::keys::flash_aad(&id, user_id));
    sqlx::query("DELETE FROM flashes WHERE created_at < $1").bind(now() - FLASH_TTL_SECONDS).execute(db.pool()).await?;
    sqlx::query(
        "INSERT INTO flashes (id, user_id, key_id, token_nonce, token_ciphertext, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(now())
    .execute(db.pool())
    .await?;
    Ok(id)
}

/// The kept secret, once: it is deleted as it is read.
pub async fn take_flash(
    db: &Db,
    keys: &Keyring,
    user_id: &str,
    id: &str,
) -> Result<Option<secrecy::SecretString>, StoreError> {
    let row = sqlx::query(
        "SELECT key_id, token_nonce, token_ciphertext FROM flashes WHERE id = $1 AND user_id = $2 AND created_at >= $3",
    )
    .bind(id)
    .bind(user_id)
    .bind(now() - FLASH_TTL_SECONDS)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let done = sqlx::query("DELETE FROM flashes WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Ok(None); // shown elsewhere meanwhile
    }
    let Some(sealed) = super::keys::sealed(&row)? else { return Ok(None) };
    Ok(Some(keys.open_str(&sealed, &super::keys::flash_aad(id, user_id))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::signup::create_user;
    use crate::store::test_db;

    #[test]
    fn passwords() {
        assert_eq!(check_password("short"), Err(AccountError::PasswordTooShort));
        assert!(check_password("long enough password").is_ok());
        assert_eq!(check_password(&"x".repeat(201)), Err(AccountError::PasswordTooLong));
    }

    #[tokio::test]
    async fn api_tokens_are_capped_per_account_even_in_parallel() {
        let (db, _dir) = test_db::sqlite().await;
        let user = create_user(&db, &Email::parse("jane@example.com").unwrap(), "correct horse battery")
            .await
            .unwrap()
            .unwrap();
        let made = futures::future::join_all((0..MAX_API_TOKENS + 5).map(|i| {
            let (db, id) = (db.clone(), user.id.clone());
            async move { create_api_token(&db, &id, &format!("t{i}")).await.unwrap() }
        }))
        .await;
        assert_eq!(made.iter().filter(|m| m.is_ok()).count() as i64, MAX_API_TOKENS);
        assert!(made.iter().filter_map(|m| m.as_ref().err()).all(|e| *e == TokenRefused::TooMany(MAX_API_TOKENS)));
        assert_eq!(list_api_tokens(&db, &user.id).await.unwrap().len() as i64, MAX_API_TOKENS);
        assert!(TokenRefused::TooMany(MAX_API_TOKENS).to_string().contains("20 API tokens"));
        // the operator's admin token is not counted
        assert!(create_admin_token(&db, "jane@example.com", "prometheus\n").await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_is_bounded_and_the_excess_is_told_to_come_back() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Barrier};
        let gate = Arc::new(HashGate::new(2, std::time::Duration::from_millis(300)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Barrier::new(3));
        let mut held = Vec::new();
        for _ in 0..2 {
            let (gate, running, most, release) = (gate.clone(), running.clone(), most.clone(), release.clone());
            held.push(tokio::spawn(async move {
                gate.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    release.wait();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        while running.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // both slots taken: a third hash waits 300 ms, then is refused
        let third = gate.run(|| ()).await;
        assert!(matches!(third, Err(StoreError::Busy(_))), "{third:?}");
        release.wait();
        for h in held {
            h.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert!(gate.run(|| 7).await.is_ok_and(|v| v == 7), "free again");
    }

    #[tokio::test]
    async fn expired_sessions_and_unclaimed_flashes_are_purged() {
        let (db, _dir) = test_db::sqlite().await;
        let user = create_user(&db, &Email::parse("jane@example.com").unwrap(), "correct horse battery")
            .await
            .unwrap()
            .unwrap();
        let live = create_session(&db, &user.id).await.unwrap();
        let old = create_session(&db, &user.id).await.unwrap();
        sqlx::query("UPDATE sessions SET expires_at = 1 WHERE id_hash = $1")
            .bind(hash_secret(&old))
            .execute(db.pool())
            .await
            .unwrap();
        let keys = Keyring::new(crate::store::crypto::Cipher::generate().1);
        put_flash(&db, &keys, &user.id, "onr_never_seen").await.unwrap();
        sqlx::query("UPDATE flashes SET created_at = 1").execute(db.pool()).await.unwrap();
        assert_eq!(purge_expired(&db).await.unwrap(), 2, "the expired session and the old flash");
        let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(db.pool()).await.unwrap();
        assert_eq!(sessions, 1);
        assert_eq!(session_user(&db, &live).await.unwrap(), Some(user));
    }

    #[tokio::test]
    async fn users_sessions_and_api_tokens() {
        let (db, _dir) = test_db::sqlite().await;
        let email = Email::parse("jane@example.com").unwrap();
        let user = create_user(&db, &email, "correct horse battery").await.unwrap().unwrap();
        assert_eq!(create_user(&db, &email, "another password!").await.unwrap(), Err(AccountError::EmailTaken));
        // signing up again with the account's own password is logging in
        assert_eq!(create_user(&db, &email, "correct horse battery").await.unwrap(), Ok(user.clone()));
        // a guess far longer than any account could have is refused without hashing
        assert_eq!(verify_login(&db, &"j".repeat(2_000_000), "correct horse battery").await.unwrap(), None);
        assert_eq!(verify_login(&db, "JANE@example.com", "correct horse battery").await.unwrap(), Some(user.clone()));
        assert_eq!(verify_login(&db, "jane@example.com", "wrong password").await.unwrap(), None);
        assert_eq!(verify_login(&db, "nobody@example.com", "correct horse battery").await.unwrap(), None);

        let session = create_session(&db, &user.id).await.unwrap();
        assert_eq!(session_user(&db, &session).await.unwrap(), Some(user.clone()));
        delete_session(&db, &session).await.unwrap();
        assert_eq!(session_user(&db, &session).await.unwrap(), None);

        let (token, secret) = create_api_token(&db, &user.id, "CI").await.unwrap().unwrap();
        assert!(secret.starts_with(API_TOKEN_PREFIX));
        assert_eq!(api_token_user(&db, &secret).await.unwrap(), Some(user.clone()));
        assert_eq!(list_api_tokens(&db, &user.id).await.unwrap()[0].id, token.id);
        assert!(!revoke_api_token(&db, "someone-else", &token.id).await.unwrap());
        assert!(!api_token_is_admin(&db, &secret).await.unwrap(), "tokens from the web are never admin");
        let admin = create_admin_token(&db, "JANE@example.com", "prometheus").await.unwrap().unwrap();
        assert!(api_token_is_admin(&db, &admin).await.unwrap());
        assert!(create_admin_token(&db, "nobody@example.com", "x").await.unwrap().is_none());
        assert!(revoke_api_token(&db, &user.id, &token.id).await.unwrap());
        assert_eq!(api_token_user(&db, &secret).await.unwrap(), None);

        let keys = Keyring::new(crate::store::crypto::Cipher::generate().1);
        let flash = put_flash(&db, &keys, &user.id, "onr_secret").await.unwrap();
        assert!(take_flash(&db, &keys, "someone-else", &flash).await.unwrap().is_none());
        use secrecy::ExposeSecret;
        assert_eq!(take_flash(&db, &keys, &user.id, &flash).await.unwrap().unwrap().expose_secret(), "onr_secret");
        assert!(take_flash(&db, &keys, &user.id, &flash).await.unwrap().is_none(), "shown once");
    }
}
