//! What a connection covers (`connection_scopes`): the last discovery (a JSON snapshot with its
//! time, state and version), the saved selection and the picker's draft, the last preview. Every
//! query is scoped by the workspace, like the connection itself; the row goes with the connection.
//!
//! A snapshot can be large (13.6 MB of JSON for 99,000 projects): it is parsed once per version,
//! off the async workers, and kept in [`SnapshotCache`]; pages read the parsed copy.

use super::{get, now, Db, StoreError};
use crate::gitlab::scope::{Counts, Listed, Preview, Selection, Snapshot};
use sqlx::any::AnyRow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The most memory the parsed snapshots of one process take (about; least recently used first
/// out). One 100,000-project snapshot takes about 40 MB.
pub const CACHE_BYTES: usize = 128 * 1024 * 1024;

/// The most snapshots kept at once, whatever their size.
pub const CACHE_ENTRIES: usize = 64;

type Key = (String, String, i64);

/// Parsed snapshots keyed by (workspace, connection, version): a new discovery stores a new
/// version, so a kept copy is never stale, and another workspace's key never matches.
#[derive(Default)]
pub struct SnapshotCache {
    /// Least recently used first.
    entries: Mutex<Vec<(Key, Arc<Listed>, usize)>>,
    parses: AtomicU64,
}

impl SnapshotCache {
    /// Snapshots parsed so far (each a miss of the cache).
    pub fn parses(&self) -> u64 {
        self.parses.load(Ordering::Relaxed)
    }

    /// Forgets every parsed snapshot (as a restarted process would have none).
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn get(&self, key: &Key) -> Option<Arc<Listed>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|(k, _, _)| k == key)?;
        let entry = entries.remove(at);
        let found = entry.1.clone();
        entries.push(entry);
        Some(found)
    }

    fn put(&self, key: Key, listed: Arc<Listed>) {
        let bytes = listed.bytes();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Older versions of the same connection are of no more use.
        entries.retain(|((w, c, _), _, _)| !(w == &key.0 && c == &key.1));
        if bytes > CACHE_BYTES {
            return;
        }
        entries.push((key, listed, bytes));
        let mut total: usize = entries.iter().map(|e| e.2).sum();
        while total > CACHE_BYTES || entries.len() > CACHE_ENTRIES {
            total -= entries.remove(0).2;
        }
    }
}

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
    /// The stored snapshot's version (0: none stored yet).
    pub snapshot_version: i64,
    /// The snapshot's counts for the selection they name (see [`Scope::counts`]).
    pub counts: Option<Counts>,
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

    /// The stored counts, when they are of the saved selection and the stored snapshot.
    pub fn counts(&self) -> Option<&Counts> {
        self.counts.as_ref().filter(|c| c.of == self.selection && c.version == self.snapshot_version)
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
        snapshot_version: get(row, "snapshot_version")?,
        counts: json(row, "counts")?,
    })
}

const COLUMNS: &str = "state, started_at, discovered_at, groups_found, projects_found, error, selection, saved_at, \
    draft, preview, preview_of, snapshot_version, counts";

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

/// The last snapshot discovery stored, parsed (from the cache when this version was parsed
/// before; else read and parsed on a blocking thread, and kept).
pub async fn snapshot(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Arc<Listed>>, StoreError> {
    let row = sqlx::query(
        "SELECT snapshot_version FROM connection_scopes WHERE integration_id = $1 AND workspace_id = $2 \
         AND snapshot IS NOT NULL",
    )
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let version: i64 = get(&row, "snapshot_version")?;
    let key = (workspace_id.to_owned(), id.to_owned(), version);
    if let Some(found) = db.snapshots().get(&key) {
        return Ok(Some(found));
    }
    let row = sqlx::query(
        "SELECT snapshot, snapshot_version FROM connection_scopes WHERE integration_id = $1 AND workspace_id = $2",
    )
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    // The version read with the text (a discovery may have stored a newer one meanwhile).
    let version: i64 = get(&row, "snapshot_version")?;
    let text: Option<String> = get(&row, "snapshot")?;
    let Some(text) = text.filter(|t| !t.is_empty()) else { return Ok(None) };
    db.snapshots().parses.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("onramp_snapshot_parses_total").increment(1);
    let parsed = tokio::task::spawn_blocking(move || match serde_json::from_str::<Snapshot>(&text) {
        Ok(snapshot) => {
            let mut listed = Listed::new(snapshot);
            listed.version = version;
            Some(Arc::new(listed))
        }
        Err(e) => {
            tracing::error!(column = "snapshot", error = %e, "a stored scope does not parse: ignored");
            None
        }
    })
    .await
    .map_err(|e| StoreError::Config(format!("parsing a snapshot stopped: {e}")))?;
    if let Some(listed) = &parsed {
        db.snapshots().put((workspace_id.to_owned(), id.to_owned(), version), listed.clone());
    }
    Ok(parsed)
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
            snapshot.mark_new(previous.as_ref().map(|p| &p.snapshot));
            drop(previous);
            // Counted for the selection saved now; one saved meanwhile stores its own counts,
            // and counts of another selection are never shown (see `Scope::counts`).
            // One run at a time (the claim): the version this run stores is the one after now.
            let scope = find(db, workspace_id, id).await?;
            let version = scope.as_ref().map_or(0, |s| s.snapshot_version) + 1;
            let selection = scope.map(|s| s.selection).unwrap_or_default();
            let text = tokio::task::spawn_blocking(move || {
                let counts = Counts::of(&snapshot, &selection, version);
                (to_json(&snapshot), to_json(&counts), snapshot)
            })
            .await
            .map_err(|e| StoreError::Config(format!("writing a snapshot stopped: {e}")))?;
            let (text, counts, snapshot) = text;
            sqlx::query(
                "UPDATE connection_scopes SET state = 'ready', discovered_at = $1, snapshot = $2, groups_found = $3, \
                 projects_found = $4, error = NULL, snapshot_version = snapshot_version + 1, counts = $7 \
                 WHERE integration_id = $5 AND workspace_id = $6",
            )
            .bind(now())
            .bind(text)
            .bind(i64::try_from(snapshot.groups.len()).unwrap_or(i64::MAX))
            .bind(i64::try_from(snapshot.projects.len()).unwrap_or(i64::MAX))
            .bind(id)
            .bind(workspace_id)
            .bind(counts)
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

/// Saves the selection (and drops the draft) with its counts, kept only when they are of the
/// stored snapshot's version (a discovery may have stored a newer one meanwhile).
/// False when the workspace has no such connection.
pub async fn save_selection(
    db: &Db,
    workspace_id: &str,
    id: &str,
    selection: &Selection,
    counts: Option<&Counts>,
) -> Result<bool, StoreError> {
    ensure(db, workspace_id, id).await?;
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE connection_scopes SET selection = $1, saved_at = $2, draft = NULL, \
         counts = CASE WHEN snapshot_version = $6 THEN $5 ELSE NULL END \
         WHERE integration_id = $3 AND workspace_id = $4",
    )
    .bind(to_json(selection))
    .bind(now())
    .bind(id)
    .bind(workspace_id)
    .bind(counts.map(to_json))
    .bind(counts.map_or(-1, |c| c.version))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // Its platforms hear of it in the same transaction (`scope.updated`).
    let data =
        super::platform_events::connection_data_of(&mut tx, workspace_id, id).await?.ok_or(sqlx::Error::RowNotFound)?;
    let audience = super::platform_events::Audience::Workspace(workspace_id);
    let kind = crate::platform::EventType::ScopeUpdated;
    let emitted = super::platform_events::emit_in(&mut tx, audience, Some(id), kind, data).await?;
    tx.commit().await?;
    emitted.sent(db);
    Ok(true)
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
        assert_eq!(snap.snapshot.projects.iter().map(|p| p.new).collect::<Vec<_>>(), [false, true]);
        assert!(claim(&db, w1, c1, now() - 600).await.unwrap());
        finish(&db, w1, c1, Err("GitLab said no".into())).await.unwrap();
        let failed = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!((failed.state, failed.error.as_deref()), (State::Failed, Some("GitLab said no")));
        assert!(!failed.never_ran(), "a failed run is not started again by looking");
        assert_eq!(snapshot(&db, w1, c1).await.unwrap().unwrap().snapshot.projects.len(), 2, "kept");
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
        assert!(save_selection(&db, w1, c1, &chosen, None).await.unwrap());
        let scope = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!((scope.selection.clone(), scope.draft.clone()), (chosen.clone(), None));
        let preview = Preview::new(vec![], 0, 5);
        save_preview(&db, w1, c1, &preview, &chosen).await.unwrap();
        let scope = find(&db, w1, c1).await.unwrap().unwrap();
        assert_eq!(scope.preview_of(&chosen), Some(&preview));
        assert_eq!(scope.preview_of(&Selection::default()), None);
        assert!(!save_selection(&db, "w2", c1, &chosen, None).await.unwrap(), "another workspace's id is no one's");
        sqlx::query("DELETE FROM integrations WHERE id = $1").bind(c1).execute(db.pool()).await.unwrap();
        assert!(find(&db, w1, c1).await.unwrap().is_none(), "the scope goes with its connection");
    }
}
