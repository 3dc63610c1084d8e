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
