//! The discovery refresh: after a good scheduled re-check, a connection whose groups and projects
//! were listed once is listed again, so new projects of included groups are picked up daily. One
//! connection at a time, called by [`super::recheck`]; the run itself (its claim per connection,
//! the runs per process, progress) is `crate::discovery`'s.

use crate::state::AppState;
use crate::store::{scopes, StoreError};

/// What the refresh did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Listed again (its outcome, a list or why not, is recorded with the connection's scope).
    Ran,
    /// Never listed: nothing to refresh (the list is made on save and on "Refresh").
    NeverListed,
    /// A run of this connection is under way (another process, or "Refresh"): left to it.
    Running,
}

/// Lists the connection's groups and projects again, and waits for it, when they were listed
/// before.
pub async fn run(state: &AppState, workspace_id: &str, id: &str) -> Result<Refresh, StoreError> {
    if !scopes::known(&state.db, workspace_id, id).await? {
        return Ok(Refresh::NeverListed);
    }
    Ok(if crate::discovery::refresh(state, workspace_id, id).await? { Refresh::Ran } else { Refresh::Running })
}
