//! Test support: Onramp and fake GitLabs on random loopback ports, TLS included.

#![allow(dead_code)]

pub mod contract;

use app::gitlab::guard::OutboundGuard;
use app::gitlab::outbound::OutboundConfig;
use fake_gitlab::FakeGitlab;
use leptos::config::LeptosOptions;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A running server on a random port.
pub struct Running {
    pub addr: SocketAddr,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub async fn spawn_router(router: axum::Router) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serves");
    });
    Running { addr }
}

pub async fn spawn_fake(fake: FakeGitlab) -> Running {
    spawn_router(fake.router()).await
}

pub struct Onramp {
    pub server: Running,
    /// Signed in (cookie jar) and sending `Origin` like Onramp's own pages.
    pub client: reqwest::Client,
    /// No session, no `Origin`.
    pub anon: reqwest::Client,
    pub state: app::state::AppState,
    pub data_dir: tempfile::TempDir,
    /// The PostgreSQL database of this Onramp (`None`: SQLite in `data_dir`).
    pub database_url: Option<String>,
}

/// Onramp with the loopback network allowed (where the fake GitLabs live), a fresh database and
/// a signed-in user.
pub async fn spawn_onramp() -> Onramp {
    spawn_onramp_with(|_| {}).await
}

/// A fresh database: PostgreSQL when `ONRAMP_TEST_DATABASE_URL` names a server (a new database
/// per test), else SQLite in `dir`.
pub async fn fresh_database_url(dir: &std::path::Path) -> Option<String> {
    let admin = std::env::var("ONRAMP_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
    let name = format!("onramp_test_{}", uuid::Uuid::new_v4().simple());
    let _ = dir;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await.expect("the test PostgreSQL server answers");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("a test database");
    pool.close().await;
    let (prefix, _) = admin.rsplit_once('/').expect("a database URL ends with /name");
    Some(format!("{prefix}/{name}"))
}

pub async fn spawn_onramp_with(adjust: impl FnOnce(&mut server::Config)) -> Onramp {
    init_log_capture();
    // Every test of a binary shares one process, so one hashing gate: debug builds on a busy
    // machine hash slowly, and a sign-up must wait rather than be told "busy".
    static WAIT_LONGER: std::sync::Once = std::sync::Once::new();
    WAIT_LONGER.call_once(|| std::env::set_var("ONRAMP_HASH_WAIT_MS", "60000"));
    let data_dir = tempfile::tempdir().expect("a temp dir");
    let database_url = fresh_database_url(data_dir.path()).await;
    let mut config = test_config(data_dir.path(), database_url);
    adjust(&mut config);
    let database_url = config.database_url.clone();
    let (db, keys) = server::open_storage(&config).await.expect("storage opens");
    let (router, state) = server::router(config, db, keys);
    let server = spawn_router(router).await;
    let anon = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
    let client = browser_client(&server);
    let onramp = Onramp { server, client, anon, state, data_dir, database_url };
    onramp.sign_up(&onramp.client, "jane@example.com").await;
    onramp
}

/// Starts the `onramp` binary (as `make run` does) on `data` with `env` on top of a clean
/// environment, its standard output to `stdout`, and waits until it answers.
pub async fn start_binary(
    data: &std::path::Path,
    env: &[(&str, &str)],
    stdout: std::process::Stdio,
) -> (tokio::process::Child, Running) {
    let (mut command, server) = onramp_command(env!("CARGO_BIN_EXE_onramp").as_ref(), data).await;
    let child = command
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_until_up(&server).await;
    (child, server)
}

/// The command that starts `binary` as `make run` does, on a free port and `data`, in a clean
/// environment (loopback allowed, SQLite, the key file, text logs); the caller adds to it.
pub async fn onramp_command(binary: &std::path::Path, data: &std::path::Path) -> (tokio::process::Command, Running) {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let mut command = tokio::process::Command::new(binary);
    command
        .env("ONRAMP_DATA_DIR", data)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("ONRAMP_OUTBOUND_ALLOW", "127.0.0.1")
        .env_remove("DATABASE_URL")
        .env_remove("ONRAMP_SECRET_KEY")
        .env_remove("ONRAMP_LOG_FORMAT");
    (command, Running { addr: format!("127.0.0.1:{port}").parse().unwrap() })
}

/// Waits until `server` answers `/healthz` (at most 30 s).
pub async fn wait_until_up(server: &Running) {
    let probe = reqwest::Client::new();
    for _ in 0..600 {
        if probe.get(server.url("/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("onramp did not start within 30 s");
}

/// The configuration tests run Onramp with: loopback allowed, generous limits.
pub fn test_config(data_dir: &std::path::Path, database_url: Option<String>) -> server::Config {
    server::Config {
        leptos: LeptosOptions::builder().output_name("onramp").build(),
        outbound: OutboundConfig {
            guard: OutboundGuard::parse("127.0.0.0/8").expect("a valid allow-list"),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(3),
            ..OutboundConfig::default()
        },
        settings: app::state::Settings {
            checks_per_minute: NonZeroU32::new(10_000).expect("non-zero"),
            signups_per_hour: NonZeroU32::new(10_000).expect("non-zero"),
            ..Default::default()
        },
        data_dir: data_dir.to_owned(),
        database_url,
        secret_key: None,
        recheck_interval: Duration::from_secs(3600),
        mail: None,
    }
}

/// A second Onramp on the same database and key as `first`, as behind a load balancer.
pub async fn spawn_second(first: &Onramp) -> (Running, app::state::AppState) {
    let config = test_config(first.data_dir.path(), first.database_url.clone());
    let (db, keys) = server::open_storage(&config).await.expect("storage opens");
    let (router, state) = server::router(config, db, keys);
    (spawn_router(router).await, state)
}

/// A client that keeps cookies and sends `Origin` like a browser on Onramp's pages.
pub fn browser_client(server: &Running) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", format!("http://{}", server.addr).parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .expect("a client")
}

pub const PASSWORD: &str = "correct horse battery staple";

impl Onramp {
    /// Signs `client` up (and so in) as `email`.
    pub async fn sign_up(&self, client: &reqwest::Client, email: &str) {
        let r = client
            .post(self.server.url("/api/auth/signup"))
            .header("accept", "text/html")
            .form(&[("email", email), ("password", PASSWORD), ("next", "/settings/integrations")])
            .send()
            .await
            .expect("answers");
        assert!(r.status().is_redirection(), "sign-up answered {}", r.status());
        assert_eq!(r.headers()["location"], "/settings/integrations", "sign-up succeeded");
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.server.url(path)).send().await.expect("answers");
        let status = r.status().as_u16();
        (status, r.text().await.expect("a body"))
    }

    /// A new Onramp API token of the signed-in user, as a script gets it (the secret, once).
    pub async fn create_api_token(&self, name: &str) -> String {
        self.client
            .post(self.server.url("/api/tokens/create"))
            .header("accept", "application/json")
            .form(&[("name", name)])
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("the secret as JSON")
    }

    /// POST /api/gitlab/validate as a script (JSON answer).
    pub async fn validate(&self, base_url: &str, token: &str) -> serde_json::Value {
        let r = self.validate_raw(&[("base_url", base_url), ("token", token)], "application/json").await;
        assert_eq!(r.status(), 200, "validate answered {}", r.status());
        r.json().await.expect("a JSON report")
    }

    pub async fn validate_raw(&self, form: &[(&str, &str)], accept: &str) -> reqwest::Response {
        self.client
            .post(self.server.url("/api/gitlab/validate"))
            .header("accept", accept)
            .form(form)
            .send()
            .await
            .expect("answers")
    }
}

/// Connects the signed-in user of `client` to `fake` with `token`, accepting the plain-http
/// warning. Returns the page of step 13.
pub async fn connect(onramp: &Onramp, client: &reqwest::Client, fake: &Running, token: &str) -> String {
    connect_at(client, &onramp.server, fake, token).await
}

/// [`connect`] at any running Onramp (a binary, a second server).
pub async fn connect_at(client: &reqwest::Client, server: &Running, fake: &Running, token: &str) -> String {
    let r = client
        .post(server.url("/api/gitlab/validate"))
        .header("accept", "text/html")
        .form(&[("base_url", fake.url("").as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let check = location.split("check=").nth(1).unwrap_or_else(|| panic!("no kept check in {location}")).to_owned();
    let r = client
        .post(server.url("/api/gitlab/accept"))
        .header("accept", "text/html")
        .form(&[("check", check)])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/integrations/gitlab/step/13"), "{location}");
    client.get(server.url(&location)).send().await.unwrap().text().await.unwrap()
}

/// Posts the sign-up (`path` = "/api/auth/signup") or log-in form at `server` as a browser does,
/// as `email` with [`PASSWORD`], and expects to be let in.
pub async fn enter_at(client: &reqwest::Client, server: &Running, path: &str, email: &str) {
    let r = client
        .post(server.url(path))
        .header("accept", "text/html")
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .expect("answers");
    assert!(r.status().is_redirection(), "{path} answered {}", r.status());
    let location = r.headers()["location"].to_str().unwrap();
    assert!(!location.contains("error="), "{path}: {location}");
}

/// A report's eight statuses as one letter each, in order: P pass, W warn, F fail, S skipped
/// (`"PWPPPPPP"`).
pub fn letters(report: &serde_json::Value) -> String {
    statuses(report)
        .iter()
        .map(|s| match s.split_once(':').map(|(_, status)| status) {
            Some("pass") => 'P',
            Some("warn") => 'W',
            Some("fail") => 'F',
            _ => 'S',
        })
        .collect()
}

/// The statuses of a JSON report's checks, in order: `["url:pass", ...]`.
pub fn statuses(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| format!("{}:{}", c["id"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect()
}

pub fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no check {id}"))
}

/// Everything any test logged, for the "no token in the logs" test.
pub fn captured_log() -> String {
    String::from_utf8_lossy(&LOG.get().expect("capture installed").lock().unwrap()).into_owned()
}

/// The captured lines logged while Onramp served the requests that answered `responses` (by the
/// `X-Request-Id` each answer carries, which names the request's span on every line). A positive
/// control ("the check was logged") must look here: the whole log holds every other test's lines.
pub fn log_of_requests(request_ids: &[String]) -> String {
    assert!(!request_ids.is_empty(), "no request id to look for");
    let spans: Vec<String> = request_ids.iter().map(|id| format!("request{{id={id} ")).collect();
    captured_log().lines().filter(|line| spans.iter().any(|s| line.contains(s.as_str()))).collect::<Vec<_>>().join("\n")
}

/// The `X-Request-Id` of an answer.
pub fn request_id(r: &reqwest::Response) -> String {
    r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("an X-Request-Id").to_owned()
}

static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_log_capture() {
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buffer.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace,hyper=info,h2=info,rustls=info,reqwest=debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    });
}

/// A TLS fake GitLab whose certificate comes from a throw-away CA. Returns the server and the
/// CA certificate (PEM).
pub async fn spawn_tls_fake(fake: FakeGitlab) -> (Running, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("a key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Onramp Test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("a CA");
    let leaf_key = KeyPair::generate().expect("a key");
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("a leaf");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("a TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().unwrap();
    let router = fake.router();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (Running { addr }, ca_cert.pem())
}

/// The (workspace, id) of the one connection saved on this Onramp (tests that save one).
pub async fn only_connection(onramp: &Onramp) -> (String, String) {
    let row = sqlx::query("SELECT workspace_id, id FROM integrations")
        .fetch_one(onramp.state.db.pool())
        .await
        .expect("one saved connection");
    (sqlx::Row::get(&row, "workspace_id"), sqlx::Row::get(&row, "id"))
}

/// A new member of jane's workspace with `role`, signed up as `email` on a client of their own
/// (invited by jane, the invitation accepted).
pub async fn member_of(onramp: &Onramp, role: &str, email: &str) -> reqwest::Client {
    let r = post(&onramp.client, onramp, "/api/invitations/create", "application/json", &[("role", role)]).await;
    assert_eq!(r.status(), 200);
    let link: serde_json::Value = r.json().await.unwrap();
    let secret = link["link"].as_str().unwrap().rsplit_once("/invite/").unwrap().1.to_owned();
    let member = browser_client(&onramp.server);
    onramp.sign_up(&member, email).await;
    let r = post(&member, onramp, "/api/invitations/accept", "application/json", &[("invite", &secret)]).await;
    assert_eq!(r.status(), 200);
    member
}

/// POSTs a form as a browser (`accept: text/html`) or a script (`application/json`) would.
pub async fn post(
    client: &reqwest::Client,
    onramp: &Onramp,
    path: &str,
    accept: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(onramp.server.url(path)).header("accept", accept).form(form).send().await.expect("an answer")
}

/// The `value` of the `<input id=…>` in a page ("" when it has none).
pub fn input_value(body: &str, id: &str) -> String {
    let start = body.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id}"));
    let tag_start = body[..start].rfind('<').unwrap();
    let tag = &body[tag_start..tag_start + body[tag_start..].find('>').unwrap()];
    tag.split(r#" value=""#).nth(1).and_then(|v| v.split('"').next()).unwrap_or_default().to_owned()
}

/// The `Location` of an answer ("" when it has none).
pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// One mail an [`SmtpSink`] received.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-stuffing undone).
    pub data: String,
}

/// An SMTP server that accepts every mail and keeps it: the tests' mail server.
#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Mail settings that send to this sink (links in mails on https://onramp.example.com).
    pub fn settings(&self) -> app::mail::MailSettings {
        app::mail::MailSettings {
            smtp_url: format!("smtp://{}", self.addr),
            from: "Onramp <onramp@example.com>".into(),
            origin: "https://onramp.example.com".into(),
        }
    }
}

pub async fn spawn_smtp_sink() -> SmtpSink {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = SmtpSink { addr: listener.local_addr().unwrap(), mails: Arc::default() };
    let mails = sink.mails.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mails = mails.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.ok()?;
                let (mut from, mut to) = (String::new(), Vec::new());
                while let Some(line) = lines.next_line().await.ok()? {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        from = line[10..].trim().to_owned(); // ok: ASCII prefix just matched
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to.push(line[8..].trim().trim_matches(['<', '>']).to_owned()); // ok: ASCII prefix just matched
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        write.write_all(b"354 go ahead\r\n").await.ok()?;
                        let mut data = String::new();
                        while let Some(l) = lines.next_line().await.ok()? {
                            if l == "." {
                                break;
                            }
                            data.push_str(l.strip_prefix('.').unwrap_or(&l));
                            data.push('\n');
                        }
                        mails.lock().unwrap().push(Mail {
                            from: std::mem::take(&mut from),
                            to: std::mem::take(&mut to),
                            data,
                        });
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        write.write_all(b"221 bye\r\n").await.ok()?;
                        return Some(());
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(reply).await.ok()?;
                }
                Some(())
            });
        }
    });
    sink
}
