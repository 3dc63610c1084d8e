//! Sealed secrets in rows: what each kind is bound to (the associated data [`bind`] makes of a
//! connection's, a kept check's and a flash's row) and reading a sealed value back from its
//! columns. Shared by `accounts`, `integrations` and `rotations`, and by the re-sealing of every
//! kind in `integrations::rotate_key`; it depends on none of them, so they need not depend on each
//! other.

use super::crypto::{bind, Sealed};
use super::{get, StoreError};
use sqlx::any::AnyRow;

/// What a saved token is bound to: its row, workspace, and everything that decides where it is
/// sent. Someone who can write the database but has no key cannot point a token at their own host
/// or move it to another workspace: the changed row no longer decrypts, and Onramp sends nothing.
/// (Rows saved before workspaces were bound to their account's id, which is the id of the
/// personal workspace they were moved to: they open unchanged.)
pub(super) fn integration_aad(id: &str, workspace_id: &str, base_url: &str, extra_ca_pem: &str) -> Vec<u8> {
    bind(&["integration", id, workspace_id, base_url, extra_ca_pem])
}

/// The same for a kept check's token: the base URL it would be saved with.
pub(super) fn check_aad(id: &str, owner: &str, base_url: &str, extra_ca_pem: &str) -> Vec<u8> {
    bind(&["check", id, owner, base_url, extra_ca_pem])
}

/// The binding a saved row was sealed with: version 1 (before 0002) the row id only.
pub(super) fn saved_aad(row: &AnyRow) -> Result<Vec<u8>, StoreError> {
    let id: String = get(row, "id")?;
    Ok(match get::<i64>(row, "aad_version")? {
        1 => id.into_bytes(),
        _ => integration_aad(
            &id,
            &get::<String>(row, "workspace_id")?,
            &get::<String>(row, "base_url")?,
            &get::<String>(row, "extra_ca_pem")?,
        ),
    })
}

/// The sealed value in a row's `key_id`, `token_nonce` and `token_ciphertext` (none while empty).
pub(super) fn sealed(row: &AnyRow) -> Result<Option<Sealed>, StoreError> {
    let key_id: Option<String> = get(row, "key_id")?;
    let nonce: Option<Vec<u8>> = get(row, "token_nonce")?;
    let ciphertext: Option<Vec<u8>> = get(row, "token_ciphertext")?;
    Ok(match (key_id, nonce, ciphertext) {
        (Some(key_id), Some(nonce), Some(ciphertext)) => Some(Sealed { key_id, nonce, ciphertext }),
        _ => None,
    })
}

/// What a flash's secret is bound to: its row and its owner.
pub(super) fn flash_aad(id: &str, owner: &str) -> Vec<u8> {
    bind(&["flash", id, owner])
}
