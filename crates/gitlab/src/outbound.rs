//! The one way out: every request Onramp makes to a GitLab goes through [`Outbound`].
//!
//! It resolves the host itself, asks the [`OutboundGuard`] about every address, and pins the
//! connection to exactly the addresses that were checked (no DNS-rebinding window). Redirects are
//! never followed (the token would go along); each request has a connect and a total timeout and a
//! cap on how much of the answer is read. TLS is rustls with the system's roots plus, optionally, a
//! private CA. `HTTPS_PROXY`/`NO_PROXY` are honoured; the guard still judges the target.

use super::base_url::BaseUrl;
use super::guard::{Blocked, OutboundGuard};
use super::token::GitlabToken;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Outbound settings, read once at start-up.
#[derive(Clone, Debug)]
pub struct OutboundConfig {
    pub guard: OutboundGuard,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    /// PEM from `ONRAMP_EXTRA_CA_FILE`, trusted for every check.
    pub extra_ca_pem: Option<String>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            guard: OutboundGuard::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 256 * 1024,
            extra_ca_pem: None,
        }
    }
}

impl OutboundConfig {
    /// `ONRAMP_OUTBOUND_ALLOW`, `ONRAMP_CONNECT_TIMEOUT_MS`, `ONRAMP_REQUEST_TIMEOUT_MS`,
    /// `ONRAMP_EXTRA_CA_FILE`. A bad value is an error that names the variable.
    pub fn from_env() -> Result<Self, String> {
        let mut config = OutboundConfig::default();
        if let Ok(spec) = std::env::var("ONRAMP_OUTBOUND_ALLOW") {
            config.guard = OutboundGuard::parse(&spec)?;
        }
        let millis = |name: &str, default: Duration| -> Result<Duration, String> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(Duration::from_millis)
                    .ok_or_else(|| format!("{name}: expected a number of milliseconds, got {v:?}")),
                Err(_) => Ok(default),
            }
        };
        config.connect_timeout = millis("ONRAMP_CONNECT_TIMEOUT_MS", config.connect_timeout)?;
        config.request_timeout = millis("ONRAMP_REQUEST_TIMEOUT_MS", config.request_timeout)?;
        if let Ok(path) = std::env::var("ONRAMP_EXTRA_CA_FILE") {
            let pem =
                std::fs::read_to_string(&path).map_err(|e| format!("ONRAMP_EXTRA_CA_FILE: cannot read {path}: {e}"))?;
            parse_ca(&pem).map_err(|e| format!("ONRAMP_EXTRA_CA_FILE: {path}: {e}"))?;
            config.extra_ca_pem = Some(pem);
        }
        Ok(config)
    }
}

/// Why a host cannot be connected to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// DNS has no address for the host.
    NotFound(String),
    /// The guard refused one of the addresses.
    Blocked(Blocked),
}

/// A host that was resolved and admitted by the guard, ready to be called.
pub struct Target {
    pub addrs: Vec<SocketAddr>,
    client: reqwest::Client,
    max_body_bytes: usize,
    proxied: Option<String>,
    connect_timeout: Duration,
}

/// How a request failed before an HTTP answer arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Refused,
    /// TLS failed; the message says why in words people know.
    Tls(String),
    /// An https:// address whose server answered in plain HTTP (no TLS on that port).
    PlainHttp,
    /// The proxy (named) could not be reached or refused the tunnel.
    Proxy(String),
    Other(String),
}

/// An HTTP answer, read up to the size cap.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body parsed as JSON, only when it says it is JSON and is whole.
    pub json: Option<serde_json::Value>,
}

impl Answer {
    /// The JSON string field `key`, if any.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.json.as_ref()?.get(key)?.as_str()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// `Retry-After` in seconds (only the delta-seconds form; dates are rare from GitLab).
    pub fn retry_after(&self) -> Option<u64> {
        self.header("retry-after")?.trim().parse().ok()
    }
}

/// The largest CA bundle accepted from a form: a private CA chain is a few KiB.
pub const MAX_CA_PEM_BYTES: usize = 64 * 1024;

/// Parses a PEM bundle of CA certificates.
pub fn parse_ca(pem: &str) -> Result<Vec<reqwest::Certificate>, String> {
    if pem.len() > MAX_CA_PEM_BYTES {
        return Err(format!(
            "the certificate text is {} KiB, more than the {} KiB a CA chain needs: paste only your GitLab's CA certificate(s)",
            pem.len() / 1024,
            MAX_CA_PEM_BYTES / 1024
        ));
    }
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|_| "this is not a PEM certificate (it should start with -----BEGIN CERTIFICATE-----)".to_owned())?;
    if certs.is_empty() {
        return Err("no certificate found: paste the PEM text that starts with -----BEGIN CERTIFICATE-----".to_owned());
    }
    Ok(certs)
}

pub struct Outbound {
    config: OutboundConfig,
}

impl Outbound {
    pub fn new(config: OutboundConfig) -> Self {
        Outbound { config }
    }

    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// Resolves `base`'s host and checks every address with the guard.
    pub async fn resolve(&self, base: &BaseUrl) -> Result<Vec<SocketAddr>, ResolveError> {
        let host = base.host();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = if let Ok(ip) = literal.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, base.port())]
        } else {
            let lookup =
                tokio::time::timeout(self.config.connect_timeout, tokio::net::lookup_host((host, base.port()))).await;
            match lookup {
                Ok(Ok(found)) => found.collect(),
                _ => Vec::new(),
            }
        };
        if addrs.is_empty() {
            return Err(ResolveError::NotFound(host.to_owned()));
        }
        for addr in &addrs {
            self.config.guard.check(literal, addr.ip()).map_err(ResolveError::Blocked)?;
        }
        Ok(addrs)
    }

    /// A client bound to `addrs` for `base`'s host, trusting `extra_ca` on top of the system roots.
    pub fn target(
        &self,
        base: &BaseUrl,
        addrs: Vec<SocketAddr>,
        extra_ca: &[reqwest::Certificate],
    ) -> Result<Target, String> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.config.connect_timeout)
            .timeout(self.config.request_timeout)
            .user_agent(concat!("Onramp/", env!("CARGO_PKG_VERSION")))
            .referer(false)
            .resolve_to_addrs(base.host(), &addrs);
        let mut cas = extra_ca.to_vec();
        if let Some(pem) = &self.config.extra_ca_pem {
            cas.extend(parse_ca(pem)?);
        }
        for ca in cas {
            builder = builder.add_root_certificate(ca);
        }
        let client = builder.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Target {
            addrs,
            client,
            max_body_bytes: self.config.max_body_bytes,
            proxied: proxy_for(base),
            connect_timeout: self.config.connect_timeout,
        })
    }
}

impl Target {
    /// GET `url`, with the token in the `PRIVATE-TOKEN` header when given. Never follows redirects.
    pub async fn get(&self, url: &str, token: Option<&GitlabToken>) -> Result<Answer, Failure> {
        self.send(self.client.get(url), token).await
    }

    /// POST `url` with a JSON body and the token; never follows redirects. A failure after the
    /// request may have been sent (a timeout, a reset) says nothing about whether GitLab acted on
    /// it: callers of a request that is not idempotent must find out another way.
    pub async fn post_json(&self, url: &str, token: &GitlabToken, body: &serde_json::Value) -> Result<Answer, Failure> {
        let request = self.client.post(url).header("content-type", "application/json").body(body.to_string());
        self.send(request, Some(token)).await
    }

    /// POST `body` to `url` with `headers` and no token (a webhook delivery); never follows
    /// redirects. The answer's body is read up to the cap like every answer.
    pub async fn post_body(&self, url: &str, headers: &[(&str, String)], body: String) -> Result<Answer, Failure> {
        let mut request = self.client.post(url).body(body);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        self.send(request, None).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, token: Option<&GitlabToken>) -> Result<Answer, Failure> {
        let mut request = request.header("accept", "application/json");
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.expose())
                .map_err(|_| Failure::Other("the token contains characters that cannot be sent".into()))?;
            value.set_sensitive(true);
            request = request.header("private-token", value);
        }
        let started = std::time::Instant::now();
        let sent = request.send().await;
        metrics::histogram!("onramp_gitlab_request_duration_seconds").record(started.elapsed().as_secs_f64());
        let mut response = sent.map_err(|e| {
            metrics::counter!("onramp_gitlab_request_failures_total").increment(1);
            self.classify(&e)
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        let mut whole = true;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_body_bytes {
                        whole = false;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.classify(&e)),
            }
        }
        let is_json = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
        let json = if is_json && whole { serde_json::from_slice(&body).ok() } else { None };
        Ok(Answer { status, headers, body: Bytes::from(body), json })
    }

    /// The issuer of the certificate the server presents, read from a TLS handshake that sends
    /// nothing (no request, no token): only to tell people which CA to paste under "Advanced".
    /// Connects only to the addresses the guard admitted.
    pub async fn peek_issuer(&self, base: &BaseUrl) -> Option<String> {
        if self.proxied.is_some() {
            return None; // the proxy, not Onramp, talks TLS to GitLab's address
        }
        let host = base.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let addr = *self.addrs.first()?;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let config =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(std::sync::Arc::new(RecordCertificate(seen.clone())))
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from(host).ok()?;
        let handshake = async {
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            connector.connect(name, tcp).await.ok()
        };
        let _ = tokio::time::timeout(self.connect_timeout, handshake).await;
        let der: Vec<u8> = seen.lock().ok()?.take()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
        Some(cert.issuer().to_string())
    }

    fn classify(&self, error: &reqwest::Error) -> Failure {
        // Its Debug form carries the URL, which may carry a token pasted into the address field.
        tracing::debug!(error = %super::token::redact_for_log(&format!("{error:?}")), "outbound request failed");
        if error.is_timeout() {
            return Failure::Timeout;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                // The first bytes were not a TLS record: an HTTP answer ("HTTP/1.1 400 …").
                if matches!(tls, rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) {
                    return Failure::PlainHttp;
                }
                return Failure::Tls(describe_tls(tls));
            }
            source = match e.downcast_ref::<std::io::Error>() {
                Some(io) => {
                    match io.kind() {
                        std::io::ErrorKind::TimedOut => return Failure::Timeout,
                        std::io::ErrorKind::ConnectionRefused => {
                            return match &self.proxied {
                                Some(proxy) => Failure::Proxy(proxy.clone()),
                                None => Failure::Refused,
                            }
                        }
                        _ => {}
                    }
                    // io::Error::source() skips the wrapped error itself: look at it directly.
                    io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static))
                }
                None => e.source(),
            };
        }
        if let Some(proxy) = &self.proxied {
            if error.is_connect() {
                return Failure::Proxy(proxy.clone());
            }
        }
        Failure::Other(if error.is_connect() { "the connection failed".into() } else { "the request failed".into() })
    }
}

/// Accepts any certificate, remembering the server's: used only by `peek_issuer`, whose
/// connection never carries a request.
#[derive(Debug)]
struct RecordCertificate(std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>);

impl rustls::client::danger::ServerCertVerifier for RecordCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.0.lock() {
            *seen = Some(end_entity.as_ref().to_vec());
        }
        // Stop right here: the certificate is all that was wanted.
        Err(rustls::Error::General("certificate recorded".into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("not used".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("not used".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// How an untrusted certificate is described (the check adds its issuer).
pub const UNKNOWN_ISSUER: &str =
    "its certificate is not trusted: it was issued by an authority Onramp does not know (self-signed or a private CA)";

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => UNKNOWN_ISSUER.into(),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "its certificate has expired".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "its certificate is for another name than the one in the address".into()
        }
        rustls::Error::InvalidCertificate(other) => format!("its certificate was refused ({other:?})"),
        rustls::Error::AlertReceived(alert) => format!("the server ended the TLS handshake ({alert:?})"),
        other => format!("the TLS handshake failed ({other})"),
    }
}

/// The proxy that will carry requests to `base`, from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and
/// `NO_PROXY` (only to name it in messages; reqwest applies the same variables itself).
fn proxy_for(base: &BaseUrl) -> Option<String> {
    let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()));
    let proxy = if base.is_https() {
        var(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])
    } else {
        var(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
    }?;
    let no_proxy = var(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
    let host = base.host().to_ascii_lowercase();
    let bypass = no_proxy
        .split(',')
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .any(|entry| entry == "*" || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}")))));
    if bypass {
        return None;
    }
    // Name the proxy without any credentials it carries.
    Some(match url::Url::parse(&proxy) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "the configured proxy".to_owned(),
    })
}
