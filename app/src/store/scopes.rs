//! What a connection covers (`connection_scopes`): the last discovery (a JSON snapshot with its
//! time and state), the saved selection and the picker's draft, the last preview. Every query is
//! scoped by the workspace, like the connection itself; the row goes with the connection.

use super::{get, now, Db, StoreError};
use crate::gitlab::scope::{Preview, Selection, Snapshot};
use sqlx::any::AnyRow;

/// Where discovery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Discovering,
    Ready,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Discovering => "discovering",
            State::Ready => "ready",
            State::Failed => "failed",
        }
    }
}

/// A connection's scope without its snapshot (which can be large: read it with [`snapshot`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub state: State,
    pub started_at: i64,
    /// The last discovery that finished (Unix seconds).
    pub discovered_at: Option<i64>,
    pub groups_found: i64,
    pub projects_found: i64,
    pub error: Option<String>,
    pub selection: Selection,
    pub saved_at: Option<i64>,
    /// The picker's unsaved changes, if any.
    pub draft: Option<Selection>,
    /// The last preview and the selection it was computed for.
    pub preview: Option<(Preview, Selection)>,
}

impl Scope {
    /// No discovery was ever started (a row made by saving a selection first): the first look
    /// starts one. A run that failed is not started again by looking; "Refresh" does that.
    pub fn never_ran(&self) -> bool {
        self.started_at == 0 && self.discovered_at.is_none() && self.state != State::Discovering
    }

    /// The selection the picker shows: the draft where there is one.
    pub fn editing(&self) -> &Selection {
        self.draft.as_ref().unwrap_or(&self.selection)
    }

    /// The last preview, when it was computed for `selection`.
    pub fn preview_of(&self, selection: &Selection) -> Option<&Preview> {
        self.preview.as_ref().filter(|(_, of)| of == selection).map(|(p, _)| p)
    }
}

fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<Option<T>, StoreError> {
    let text: Option<String> = get(row, column)?;
    Ok(text.filter(|t| !t.is_empty()).and_then(|t| match serde_json::from_str(&t) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(column, error = %e, "a stored scope does not parse: ignored");
            None
        }
    }))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn scope(row: &AnyRow) -> Result<Scope, StoreError> {
    let state = match get::<String>(row, "state")?.as_str() {
        "discovering" => State::Discovering,
        "failed" => State::Failed,
        _ => State::Ready,
    };
    let preview: Option<Preview> = json(row, "preview")?;
    let preview_of: Option<Selection> = json(row, "preview_of")?;
    Ok(Scope {
        state,
        started_at: get(row, "started_at")?,
        discovered_at: get(row, "discovered_at")?,
        groups_found: get(row, "groups_found")?,
        projects_found: get(row, "projects_found")?,
        error: get(row, "error")?,
        selection: json(row, "selection")?.unwrap_or_default(),
        saved_at: get(row, "saved_at")?,
        draft: json(row, "draft")?,
        preview: preview.zip(preview_of),
    })
}

const COLUMNS: &str = "state, started_at, discovered_at, groups_found, projects_found, error, selection, saved_at, \
    draft, preview, preview_of";

/// The scope of a workspace's connection, `None` when discovery never ran and nothing was chosen.
pub async fn find(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Scope>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM connection_scopes WHERE integration_id = $1 AND workspace_id = $2"
    ))
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(scope).transpose()
}

/// The last snapshot discovery stored.
pub async fn snapshot(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Snapshot>, StoreError> {
    let row = sqlx::query("SELECT snapshot FROM connection_scopes WHERE integration_id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(row) => json(&row, "snapshot"),
        None => Ok(None),
    }
}

/// A row for the connection (state `ready`, nothing discovered) unless it has one.
async fn ensure(db: &Db, workspace_id: &str, id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO connection_scopes (integration_id, workspace_id, state, started_at) \
         SELECT id, workspace_id, 'ready', 0 FROM integrations WHERE id = $1 AND workspace_id = $2 \
         ON CONFLICT (integration_id) DO NOTHING",
    )
    .bind(id)
    .bind(workspace_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Claims a discovery run: true when it may start (none is running, or the one running started
/// before `stale_before`, Unix seconds — its process died). Of several processes, one wins.
pub async fn claim(db: &Db, workspace_id: &str, id: &str, stale_before: i64) -> Result<bool, StoreError> {
    ensure(db, workspace_id, id).await?;
    let done = sqlx::query(
        "UPDATE connection_scopes SET state = 'discovering', started_at = $1, groups_found = 0, projects_found = 0, \
         error = NULL WHERE integration_id = $2 AND workspace_id = $3 AND (state <> 'discovering' OR started_at < $4)",
    )
    .bind(now())
    .bind(id)
    .bind(workspace_id)
    .bind(stale_before)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Found so far, while discovery runs.
pub async fn progress(db: &Db, workspace_id: &str, id: &str, groups: usize, projects: usize) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE connection_scopes SET groups_found = $1, projects_found = $2 \
         WHERE integration_id = $3 AND workspace_id = $4 AND state = 'discovering'",
    )
    .bind(i64::try_from(groups).unwrap_or(i64::MAX))
    .bind(i64::try_from(projects).unwrap_or(i64::MAX))
    .bind(id)
    .bind(workspace_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records a finished discovery: the snapshot (projects the previous one lacked marked new), or
/// why it failed (the previous snapshot stays).
pub async fn finish(db: &Db, workspace_id: &str, id: &str, found: Result<Snapshot, String>) -> Result<(), StoreError> {
    match found {
        Ok(mut snapshot) => {
            let previous = self::snapshot(db, workspace_id, id).await?;
            snapshot.mark_new(previous.as_ref());
            sqlx::query(
                "UPDATE connection_scopes SET state = 'ready', discovered_at = $1, snapshot = $2, groups_found = $3, \
                 projects_found = $4, error = NULL WHERE integration_id = $5 AND workspace_id = $6",
            )
            .bind(now())
            .bind(to_json(&snapshot))
            .bind(i64::try_from(snapshot.groups.len()).unwrap_or(i64::MAX))
            .bind(i64::try_from(snapshot.projects.len()).unwrap_or(i64::MAX))
            .bind(id)
            .bind(workspace_id)
            .execute(db.pool())
            .await?;
        }
        Err(why) => {
            sqlx::query(
                "UPDATE connection_scopes SET state = 'failed', error = $1 WHERE integration_id = $2 AND workspace_id = $3",
            )
            .bind(why)
            .bind(id)
            .bind(workspace_id)
            .execute(db.pool())
            .await?;
        }
    }
    Ok(())
}

/// Saves the selection (and drops the draft). False when the workspace has no such connection.
pub async fn save_selection(db: &Db, workspace_id: &str, id: &str, selection: &Selection) -> Result<bool, StoreError> {
    ensure(db, workspace_id, id).await?;
    let done = sqlx::query(
        "UPDATE connection_scopes SET selection = $1, saved_at = $2, draft = NULL \
         WHERE integration_id = $3 AND workspace_id = $4",
    )
    .bind(to_json(selection))
    .bind(now())
    .bind(id)
    .bind(workspace_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps the picker's unsaved selection; `None` drops it.
pub async fn save_draft(db: &Db, workspace_id: &str, id: &str, draft: Option<&Selection>) -> Result<bool, StoreError> {
    ensure(db, workspace_id, id).await?;
    let done = sqlx::query("UPDATE connection_scopes SET draft = $1 WHERE integration_id = $2 AND workspace_id = $3")
        .bind(draft.map(to_json))
        .bind(id)
        .bind(workspace_id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps a preview and the selection it counted.
pub async fn save_preview(
    db: &Db,
    workspace_id: &str,
    id: &str,
    preview: &Preview,
    of: &Selection,
) -> Result<(), StoreError> {
    ensure(db, workspace_id, id).await?;
    sqlx::query(
        "UPDATE connection_scopes SET preview = $1, preview_of = $2 WHERE integration_id = $3 AND workspace_id = $4",
    )
    .bind(to_json(preview))
    .bind(to_json(of))
    .bind(id)
    .bind(workspace_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Connections whose scope was discovered before: the daily re-check refreshes those.
pub async fn known(db: &Db, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT 1 AS one FROM connection_scopes WHERE integration_id = $1 AND workspace_id = $2 \
         AND discovered_at IS NOT NULL",
    )
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    use super::super::test_db;
    use super::*;
    use crate::gitlab::scope::Project;

    /// A saved connection: (its workspace, its id).
    async fn connection(db: &Db) -> (String, String) {
        use crate::gitlab::token::GitlabToken;
        use crate::store::crypto::{Cipher, Keyring};
        use crate::store::integrations::{self, tests};
        let keys = Keyring::new(Cipher::generate().1);
        let (user, ws) = tests::account(db, "jane@example.com").await;
        let token = GitlabToken::parse("glpat-first-token-1234").unwrap();
        let saved = integrations::save(db, &keys, &ws, &user.id, &tests::report("2027-01-01"), &token, "").await;
        (ws, tests::saved(saved.unwrap()).id)
    }

    fn project(path: &str) -> Project {
        Project {
            id: 1,
            path_with_namespace: path.into(),
            name: path.into(),
            access_level: 40,
            archived: false,
            visibility: "private".into(),
            new: false,
        }
    }

    #[tokio::test]
    async fn one_run_at_a_time_new_projects_marked_and_other_workspaces_see_nothing() {
        let (db, _dir) = test_db::sqlite().await;
        let (w1, c1) = connection(&db).await;
        let (w1, c1) = (w1.as_str(), c1.as_str());
        assert!(find(&db, w1, c1).await.unwrap().is_none());
        assert!(save_draft(&db, w1, c1, None).await.unwrap());
        assert!(find(&db, w1, c1).await.unwrap().unwrap().never_ran(), "a row, no run");
        assert!(claim(&db, w1, c1, now() - 600).await.unwrap());
        assert!(!claim(&db, w1, c1, now() - 600).await.unwrap(), "a second run waits");
        assert!(!claim(&db, "w2", c1, now() + 10).await.unwrap(), "another workspace cannot start it");
        progress(&db, w1, c1, 2, 7).await.unwrap();
        let running = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!((running.state, running.projects_found), (State::Discovering, 7));
        let first = Snapshot { groups: vec![], projects: vec![project("a/x")] };
        finish(&db, w1, c1, Ok(first)).await.unwrap();
        assert!(known(&db, w1, c1).await.unwrap());
        assert!(claim(&db, w1, c1, now() - 600).await.unwrap());
        finish(&db, w1, c1, Ok(Snapshot { groups: vec![], projects: vec![project("a/x"), project("a/y")] }))
            .await
            .unwrap();
        let snap = snapshot(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!(snap.projects.iter().map(|p| p.new).collect::<Vec<_>>(), [false, true]);
        assert!(claim(&db, w1, c1, now() - 600).await.unwrap());
        finish(&db, w1, c1, Err("GitLab said no".into())).await.unwrap();
        let failed = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!((failed.state, failed.error.as_deref()), (State::Failed, Some("GitLab said no")));
        assert!(!failed.never_ran(), "a failed run is not started again by looking");
        assert_eq!(snapshot(&db, w1, c1).await.unwrap().unwrap().projects.len(), 2, "kept");
        assert!(snapshot(&db, "w2", c1).await.unwrap().is_none());
        assert!(find(&db, "w2", c1).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn selection_draft_and_preview_are_kept_per_connection() {
        let (db, _dir) = test_db::sqlite().await;
        let (w1, c1) = connection(&db).await;
        let (w1, c1) = (w1.as_str(), c1.as_str());
        let mut chosen = Selection::default();
        chosen.groups.insert("acme".into());
        assert!(save_draft(&db, w1, c1, Some(&chosen)).await.unwrap());
        let scope = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!(scope.editing(), &chosen);
        assert!(scope.selection.is_empty());
        assert!(save_selection(&db, w1, c1, &chosen).await.unwrap());
        let scope = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!((scope.selection.clone(), scope.draft.clone()), (chosen.clone(), None));
        let preview = Preview::new(vec![], 0, 5);
        save_preview(&db, w1, c1, &preview, &chosen).await.unwrap();
        let scope = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!(scope.preview_of(&chosen), Some(&preview));
        assert_eq!(scope.preview_of(&Selection::default()), None);
        assert!(!save_selection(&db, "w2", c1, &chosen).await.unwrap(), "another workspace's id is no one's");
        sqlx::query("DELETE FROM integrations WHERE id = $1").bind(c1).execute(db.pool()).await.unwrap();
        assert!(find(&db, w1, c1).await.unwrap().is_none(), "the scope goes with its connection");
    }
}
