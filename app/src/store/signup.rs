//! Signing up: an account comes into being with its personal workspace, in one transaction.
//! Apart from `accounts` (users) and `workspaces` (workspaces and memberships) so that neither
//! needs the other for it.

use super::accounts::{check_password, hash_password, user_by_email, verify_password, AccountError, Email, User};
use super::workspaces::create_personal;
use super::{new_id, now, Db, StoreError};

/// Creates a user, or, when the address has an account already and the password is that
/// account's, returns that account (signing up twice logs you in). `Err(Ok(_))` for what the
/// person should fix, `Err(Err(_))` for storage errors. Either way exactly one password hash is
/// computed, through the bounded hashing slots.
pub async fn create_user(db: &Db, email: &Email, password: &str) -> Result<Result<User, AccountError>, StoreError> {
    if let Err(e) = check_password(password) {
        return Ok(Err(e));
    }
    if let Some((user, hash)) = user_by_email(db, email.as_str()).await? {
        return Ok(if verify_password(password.to_owned(), Some(hash)).await? {
            Ok(user)
        } else {
            Err(AccountError::EmailTaken)
        });
    }
    let hash = hash_password(password.to_owned()).await?;
    let id = new_id();
    // The account and its personal workspace come into being together.
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(email.as_str())
        .bind(&hash)
        .bind(now())
        .execute(&mut *tx)
        .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(Err(AccountError::EmailTaken)),
        Err(e) => return Err(e.into()),
    }
    create_personal(&mut tx, &id, &crate::workspace::personal_name(email.as_str())).await?;
    tx.commit().await?;
    Ok(Ok(User { id, email: email.as_str().to_owned() }))
}
