//! `onramp check`: the connection check from a terminal. The token comes from
//! `ONRAMP_GITLAB_TOKEN` or standard input, never from the command line (argv is visible to
//! every user of the machine).

use app::gitlab::check::{self, CheckInput};
use app::gitlab::outbound::{Outbound, OutboundConfig};
use app::gitlab::report::{Report, Status};
use app::gitlab::token::GitlabToken;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

pub struct CheckArgs {
    pub base_url: String,
    pub json: bool,
    pub ca_file: Option<PathBuf>,
}

/// Runs the check and prints the report. Exit code: 0 when ok, 1 when a check failed, 2 when the
/// command itself could not run (bad usage, unreadable file, bad configuration).
pub async fn check(args: CheckArgs) -> i32 {
    let config = match OutboundConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("onramp check: {e}");
            return 2;
        }
    };
    let ca_pem = match &args.ca_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("onramp check: cannot read --ca-file {}: {e}", path.display());
                return 2;
            }
        },
        None => None,
    };
    let token = match read_token() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("onramp check: {e}");
            return 2;
        }
    };
    let input =
        CheckInput { base_url: &args.base_url, token: GitlabToken::parse(&token), extra_ca_pem: ca_pem.as_deref() };
    drop(token);
    let report = check::run(&Outbound::new(config), &input, time::OffsetDateTime::now_utc().date()).await;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report).expect("a report serialises")));
    } else {
        emit(&table(&report));
    }
    if report.ok {
        0
    } else {
        1
    }
}

fn read_token() -> Result<String, String> {
    if let Ok(token) = std::env::var("ONRAMP_GITLAB_TOKEN") {
        return Ok(token);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return rpassword::prompt_password("GitLab token (input hidden): ")
            .map_err(|e| format!("cannot read the token: {e}"));
    }
    let mut token = String::new();
    stdin.lock().read_to_string(&mut token).map_err(|e| format!("cannot read the token from standard input: {e}"))?;
    Ok(token)
}

/// The report as a plain-text table, one check a line.
/// Writes to standard output. A reader that went away (`onramp check … | head -1`) is no error:
/// the exit code still tells the outcome, and nothing panics.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("onramp check: cannot write the report: {e}");
        }
    }
}

pub fn table(report: &Report) -> String {
    let mut out = format!(
        "GitLab connection check of {}{} in {} ms\n\n",
        report.base_url,
        report.gitlab_version.as_ref().map(|v| format!(" (GitLab {v})")).unwrap_or_default(),
        report.elapsed_ms
    );
    for c in &report.checks {
        let status = match c.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skipped => "SKIP",
        };
        out.push_str(&format!("{status:<5} {:<10} {}", c.id.as_str(), c.message));
        if let (Some(step), Status::Fail | Status::Warn) = (c.fix_step, c.status) {
            out.push_str(&format!(" [fix: step {step}]"));
        }
        out.push('\n');
    }
    let failed = report.failures().count();
    out.push_str(&match failed {
        0 => "\nConnected: no check failed.\n".to_owned(),
        1 => "\n1 check failed.\n".to_owned(),
        n => format!("\n{n} checks failed.\n"),
    });
    out
}

/// `onramp platform-key …`: instance-level keys for platforms that serve many customers.
pub enum PlatformKeyAction {
    Create { name: String, scopes: String, return_origins: Vec<String>, workspace: Option<String> },
    List { workspace: Option<String> },
    Revoke { key: String, workspace: Option<String> },
}

/// Records a change of a workspace's keys in its audit log, as done from the command line.
async fn audit_key(db: &app::store::Db, workspace: Option<&str>, action: &str, name: &str) {
    let Some(workspace) = workspace else { return };
    let actor = app::store::workspaces::Actor { email: "onramp platform-key (command line)".into(), ip: String::new() };
    if let Err(e) = app::store::workspaces::record(db, workspace, &actor, action, name).await {
        eprintln!("onramp platform-key: done, but not recorded in the audit log: {e}");
    }
}

/// Carries out `onramp platform-key` on the storage (the server may be running on it). Standard
/// output: what was done, and for `create` the key alone on the last line (printed once; only its
/// hash is kept). Exit code 0, 1 when refused (bad scope, unknown key), 2 for storage errors.
pub async fn platform_key(db: &app::store::Db, action: PlatformKeyAction) -> (String, Result<(), (u8, String)>) {
    use app::api::platform::rfc3339 as date;
    use app::platform::{ReturnOrigin, Scopes};
    use app::store::platform::{self, NewKey};
    let storage = |e: app::store::StoreError| (2u8, e.to_string());
    match action {
        PlatformKeyAction::Create { name, scopes, return_origins, workspace } => {
            if let Some(id) = workspace.as_deref() {
                match platform::workspace_exists(db, id).await {
                    Ok(true) => {}
                    Ok(false) => return (String::new(), Err((1, format!("there is no workspace with the id {id:?}")))),
                    Err(e) => return (String::new(), Err(storage(e))),
                }
            }
            let scopes = match Scopes::parse(&scopes) {
                Ok(s) => s,
                Err(e) => return (String::new(), Err((1, e))),
            };
            let origins = match return_origins.iter().map(|o| ReturnOrigin::parse(o)).collect::<Result<Vec<_>, _>>() {
                Ok(o) => o,
                Err(e) => return (String::new(), Err((1, format!("--return-origin {e}")))),
            };
            match platform::create_key(
                db,
                NewKey { name: &name, scopes, return_origins: origins, workspace_id: workspace.as_deref() },
            )
            .await
            {
                Ok(Ok((key, secret))) => {
                    audit_key(db, workspace.as_deref(), app::workspace::audit::PLATFORM_KEY_CREATED, &key.name).await;
                    (
                    format!(
                        "Created the platform key {:?} (id {}) with {}.\nIt is shown once, now; Onramp keeps only its hash.\n{secret}\n",
                        key.name,
                        key.id,
                        key.scopes.to_stored().replace(' ', ", ")
                    ),
                    Ok(()),
                )
                }
                Ok(Err(refused)) => (String::new(), Err((1, refused))),
                Err(e) => (String::new(), Err(storage(e))),
            }
        }
        PlatformKeyAction::List { workspace } => match platform::list_keys(db, workspace.as_deref()).await {
            Ok(keys) => {
                let mut out = String::new();
                if keys.is_empty() {
                    out.push_str("No platform keys yet: onramp platform-key create --name NAME --scopes LIST\n");
                }
                for key in keys {
                    let when = |t: Option<i64>| t.map_or("never".to_owned(), date);
                    out.push_str(&format!(
                        "{}  {:?}  scopes: {}  return origins: {}  created {}  last used {}{}\n",
                        key.id,
                        key.name,
                        key.scopes.to_stored().replace(' ', ","),
                        if key.return_origins.is_empty() {
                            "none".to_owned()
                        } else {
                            key.return_origins.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(",")
                        },
                        date(key.created_at),
                        when(key.last_used_at),
                        key.revoked_at.map(|t| format!("  REVOKED {}", date(t))).unwrap_or_default(),
                    ));
                }
                (out, Ok(()))
            }
            Err(e) => (String::new(), Err(storage(e))),
        },
        PlatformKeyAction::Revoke { key, workspace } => {
            match platform::revoke_key(db, workspace.as_deref(), &key).await {
                Ok(true) => {
                    audit_key(db, workspace.as_deref(), app::workspace::audit::PLATFORM_KEY_REVOKED, &key).await;
                    (format!("Revoked {key:?}: it stops working now.\n"), Ok(()))
                }
                Ok(false) => (
                    String::new(),
                    Err((1, format!("no live platform key has the id or name {key:?} (onramp platform-key list)"))),
                ),
                Err(e) => (String::new(), Err(storage(e))),
            }
        }
    }
}
