//! Step pages 1–11 for a visitor without a cookie, rendered once and kept compressed.
//!
//! Without a viewer such a page is a pure function of its path and query: no session, no
//! confirmed instance, nothing per person. Rendering it and compressing it with brotli cost a
//! millisecond of CPU per answer, most of it in the compressor; the same page now comes out of
//! memory, already brotli- and gzip-compressed, like a file.
//!
//! The page's inline scripts are allowed by their SHA-256 hashes instead of a per-answer nonce
//! (a nonce would change the bytes of every answer): the rendered nonce is taken out of the
//! markup and the policy lists the hash of each inline script, which is at least as strict.
//!
//! Anything else goes the usual way (rendered per request, compressed by `CompressionLayer`): a
//! cookie or an `Authorization` header, another method, another path, a long query, a client
//! that accepts neither brotli nor gzip, an answer that is not a 200 HTML page or sets a cookie.
//! The cache is bounded by bytes and keeps the pages asked for most (`quick_cache`), so links
//! with made-up `?base=` values cannot grow it or push the common pages out for long.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;

/// The most bytes the kept pages may take (compressed, both encodings).
pub const CAPACITY_BYTES: u64 = 4 * 1024 * 1024;
/// The longest query a kept page may have (a `?base=` address is far shorter).
pub const MAX_QUERY: usize = 1024;
/// A rendered page larger than this is served but not kept.
const MAX_PAGE: usize = 512 * 1024;
/// Compression when a page is first kept: close to the smallest output for HTML of this size,
/// at a small fraction of quality 11's cost (a made-up `?base=` makes the server render and
/// compress once; that must not cost more than an ordinary dynamic page did).
const BROTLI_QUALITY: i32 = 6;
const GZIP_LEVEL: u32 = 6;

/// A compressed encoding both a browser and this cache speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        })
    }
}

/// The encoding to answer with, from an `Accept-Encoding` value: brotli if it is accepted
/// (explicitly or by `*`) with a quality above zero, else gzip, else none (RFC 9110 §12.5.3).
pub fn preferred_encoding(accept: &str) -> Option<Encoding> {
    let mut brotli = None;
    let mut gzip = None;
    let mut any = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut quality = 1.0_f32;
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    // An unreadable quality counts as refusal rather than as acceptance.
                    quality = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
                }
            }
        }
        match coding.as_str() {
            "br" => brotli = Some(quality),
            "gzip" | "x-gzip" => gzip = Some(quality),
            "*" => any = Some(quality),
            _ => {}
        }
    }
    let accepted = |q: Option<f32>| q.or(any).is_some_and(|q| q > 0.0);
    if accepted(brotli) {
        Some(Encoding::Brotli)
    } else if accepted(gzip) {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// The key a request's page is kept under (`path?query`), or `None` when it must be rendered
/// for this request.
pub fn key_for(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Option<String> {
    if method != Method::GET || headers.contains_key(header::COOKIE) || headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    let number = uri.path().strip_prefix("/integrations/gitlab/step/")?;
    // "1" to "11" exactly: no leading zeros, no other spellings of the same page.
    if !matches!(number, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "10" | "11") {
        return None;
    }
    match uri.query() {
        None => Some(uri.path().to_owned()),
        Some(query) if query.len() <= MAX_QUERY => Some(format!("{}?{query}", uri.path())),
        Some(_) => None,
    }
}

/// The markup without the nonce the renderer put on its tags (the kept page's policy allows
/// its scripts by hash, and one page's nonce must not be served to everybody).
pub fn without_nonce(html: &str, nonce: &str) -> String {
    html.replace(&format!(r#" nonce="{nonce}""#), "")
        // Leptos puts the nonce in the preload links' `crossorigin` too; any value there means
        // "anonymous", which is what the module script is fetched with.
        .replace(&format!(r#" crossorigin="{nonce}""#), r#" crossorigin="anonymous""#)
}

/// `'sha256-…'` for each inline script (a `<script>` without `src`), in order.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..]; // ok: `start` is where an ASCII pattern was found
        let Some(open_end) = after.find('>') else { break };
        let tag = &after[..open_end]; // ok: index of an ASCII '>'
        let body = &after[open_end + 1..]; // ok: just past an ASCII '>'
        let Some(close) = body.find("</script>") else { break };
        if !tag.contains(" src=") {
            let digest = Sha256::digest(&body.as_bytes()[..close]);
            hashes.push(format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
        }
        rest = &body[close + "</script>".len()..]; // ok: past an ASCII pattern found in `body`
    }
    hashes
}

/// A kept page: the same markup in both encodings, and its policy.
#[derive(Clone)]
pub struct Page {
    brotli: Bytes,
    gzip: Bytes,
    policy: HeaderValue,
}

impl Page {
    /// Compresses `html`, whose inline scripts carried `nonce`; `None` if the page cannot be kept.
    pub fn new(html: &str, nonce: &str) -> Option<Self> {
        let html = without_nonce(html, nonce);
        let scripts = inline_script_hashes(&html).join(" ");
        let policy = HeaderValue::from_str(&app::content_security_policy(&scripts)).ok()?;
        let mut brotli = Vec::with_capacity(html.len() / 3);
        let params = brotli::enc::BrotliEncoderParams { quality: BROTLI_QUALITY, ..Default::default() };
        brotli::BrotliCompress(&mut html.as_bytes(), &mut brotli, &params).ok()?;
        let mut gzip =
            flate2::write::GzEncoder::new(Vec::with_capacity(html.len() / 3), flate2::Compression::new(GZIP_LEVEL));
        gzip.write_all(html.as_bytes()).ok()?;
        let gzip = gzip.finish().ok()?;
        Some(Page { brotli: brotli.into(), gzip: gzip.into(), policy })
    }

    fn weight(&self) -> u64 {
        (self.brotli.len() + self.gzip.len() + self.policy.len() + 64) as u64
    }

    /// The answer in `encoding`.
    pub fn response(&self, encoding: Encoding) -> Response {
        let body = match encoding {
            Encoding::Brotli => self.brotli.clone(),
            Encoding::Gzip => self.gzip.clone(),
        };
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(header::CONTENT_ENCODING, encoding.header());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(header::CONTENT_SECURITY_POLICY, self.policy.clone());
        response
    }
}

#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<String, Arc<Page>> for ByBytes {
    fn weight(&self, key: &String, page: &Arc<Page>) -> u64 {
        key.len() as u64 + page.weight()
    }
}

/// The kept pages, shared by all requests.
#[derive(Clone)]
pub struct PageCache {
    pages: Arc<quick_cache::sync::Cache<String, Arc<Page>, ByBytes>>,
}

impl Default for PageCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY_BYTES)
    }
}

impl PageCache {
    pub fn with_capacity(bytes: u64) -> Self {
        // About 7 KB per page (brotli and gzip of a 12 KB step page).
        let items = (bytes / 7000).max(16) as usize;
        PageCache { pages: Arc::new(quick_cache::sync::Cache::with_weighter(items, bytes, ByBytes)) }
    }

    /// How many pages are kept.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The middleware: a kept page if there is one, else the rendered page, kept for next time.
    pub async fn middleware(State(cache): State<PageCache>, req: Request, next: Next) -> Response {
        let encoding =
            req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).and_then(preferred_encoding);
        let (Some(encoding), Some(key)) = (encoding, key_for(req.method(), req.uri(), req.headers())) else {
            return next.run(req).await;
        };
        if let Some(page) = cache.pages.get(&key) {
            return page.response(encoding);
        }
        let response = next.run(req).await;
        let Some(nonce) = keepable(&response) else {
            return response;
        };
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_PAGE).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "a step page could not be read to keep it");
                return (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong. Try again in a moment.")
                    .into_response();
            }
        };
        let page = std::str::from_utf8(&bytes).ok().and_then(|html| Page::new(html, &nonce));
        match page {
            Some(page) => {
                let page = Arc::new(page);
                cache.pages.insert(key, page.clone());
                page.response(encoding)
            }
            // Not kept: the page as rendered (the compression layer outside compresses it).
            None => Response::from_parts(parts, Body::from(bytes)),
        }
    }
}

/// The nonce of a rendered page that may be kept: a 200 HTML answer that sets no cookie and
/// whose policy carries a nonce.
fn keepable(response: &Response) -> Option<String> {
    let headers = response.headers();
    let html =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if response.status() != StatusCode::OK || !html || headers.contains_key(header::SET_COOKIE) {
        return None;
    }
    let policy = headers.get(header::CONTENT_SECURITY_POLICY)?.to_str().ok()?;
    let nonce = policy.split("'nonce-").nth(1)?.split('\'').next()?;
    (!nonce.is_empty()).then(|| nonce.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brotli_first_gzip_next_refusals_respected() {
        assert_eq!(preferred_encoding("br, gzip"), Some(Encoding::Brotli));
        assert_eq!(preferred_encoding("gzip, deflate, br, zstd"), Some(Encoding::Brotli));
        assert_eq!(preferred_encoding("gzip"), Some(Encoding::Gzip));
        assert_eq!(preferred_encoding("GZIP;Q=0.5"), Some(Encoding::Gzip));
        assert_eq!(preferred_encoding("br;q=0, gzip"), Some(Encoding::Gzip));
        assert_eq!(preferred_encoding("br;q=0, gzip;q=0"), None);
        assert_eq!(preferred_encoding("*"), Some(Encoding::Brotli));
        assert_eq!(preferred_encoding("*;q=0"), None);
        assert_eq!(preferred_encoding("br;q=0, *"), Some(Encoding::Gzip), "a named refusal wins over *");
        assert_eq!(preferred_encoding("identity"), None);
        assert_eq!(preferred_encoding(""), None);
        assert_eq!(preferred_encoding("br;q=nonsense, gzip"), Some(Encoding::Gzip));
        assert_eq!(preferred_encoding("br;q=2"), None, "out of range is not acceptance");
        assert_eq!(preferred_encoding("ü;q=ü, gzip"), Some(Encoding::Gzip));
    }

    fn request(uri: &str, headers: &[(header::HeaderName, &str)]) -> (Method, axum::http::Uri, HeaderMap) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        (Method::GET, uri.parse().unwrap(), map)
    }

    #[test]
    fn only_anonymous_gets_of_steps_one_to_eleven_are_kept() {
        let key = |uri: &str, headers: &[(header::HeaderName, &str)]| {
            let (method, uri, headers) = request(uri, headers);
            key_for(&method, &uri, &headers)
        };
        assert_eq!(key("/integrations/gitlab/step/8", &[]).as_deref(), Some("/integrations/gitlab/step/8"));
        assert_eq!(
            key("/integrations/gitlab/step/11?base=https%3A%2F%2Fgitlab.com", &[]).as_deref(),
            Some("/integrations/gitlab/step/11?base=https%3A%2F%2Fgitlab.com")
        );
        for uri in [
            "/integrations/gitlab/step/12",
            "/integrations/gitlab/step/13",
            "/integrations/gitlab/step/08",
            "/integrations/gitlab/step/0",
            "/integrations/gitlab/step/",
            "/integrations/gitlab/step/8/",
            "/login",
            "/",
        ] {
            assert_eq!(key(uri, &[]), None, "{uri}");
        }
        assert_eq!(key("/integrations/gitlab/step/8", &[(header::COOKIE, "onramp_session=x")]), None);
        assert_eq!(key("/integrations/gitlab/step/8", &[(header::AUTHORIZATION, "Bearer onr_x")]), None);
        let long = format!("/integrations/gitlab/step/8?base={}", "a".repeat(MAX_QUERY));
        assert_eq!(key(&long, &[]), None);
        let (_, uri, headers) = request("/integrations/gitlab/step/8", &[]);
        assert_eq!(key_for(&Method::HEAD, &uri, &headers), None);
        assert_eq!(key_for(&Method::POST, &uri, &headers), None);
    }

    const PAGE: &str = r#"<!DOCTYPE html><html><head><link rel="modulepreload" href="/pkg/onramp.js" crossorigin="N0nce"><script type="module" nonce="N0nce">import('/pkg/onramp.js')</script><script nonce="N0nce">__A=[];</script><script src="/x.js" nonce="N0nce"></script></head><body><p>N0nce is text</p><script nonce="N0nce"></script></body></html>"#;

    #[test]
    fn the_nonce_leaves_the_tags_and_each_inline_script_is_hashed() {
        let html = without_nonce(PAGE, "N0nce");
        assert!(!html.contains(r#"nonce=""#), "{html}");
        assert!(html.contains(r#"crossorigin="anonymous""#));
        assert!(html.contains("<p>N0nce is text</p>"), "text is left alone");
        let hashes = inline_script_hashes(&html);
        let b64 = |s: &str| format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s)));
        assert_eq!(hashes, vec![b64("import('/pkg/onramp.js')"), b64("__A=[];"), b64("")]);
        assert_eq!(inline_script_hashes("<script>unclosed"), Vec::<String>::new());
        assert_eq!(inline_script_hashes("<scriptü>é</script>"), vec![b64("é")]);
    }

    #[test]
    fn a_kept_page_decompresses_to_the_page_and_allows_its_scripts_by_hash() {
        use std::io::Read;
        let page = Page::new(PAGE, "N0nce").unwrap();
        let policy = page.policy.to_str().unwrap();
        assert!(!policy.contains("nonce"), "{policy}");
        for hash in inline_script_hashes(&without_nonce(PAGE, "N0nce")) {
            assert!(policy.contains(&hash), "{policy}");
        }
        let mut out = String::new();
        brotli::Decompressor::new(&page.brotli[..], 4096).read_to_string(&mut out).unwrap();
        assert_eq!(out, without_nonce(PAGE, "N0nce"));
        let mut out = String::new();
        flate2::read::GzDecoder::new(&page.gzip[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, without_nonce(PAGE, "N0nce"));
        let response = page.response(Encoding::Gzip);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = PageCache::with_capacity(64 * 1024);
        let page = Arc::new(Page::new(PAGE, "N0nce").unwrap());
        for i in 0..10_000 {
            cache.pages.insert(format!("/integrations/gitlab/step/8?base={i}"), page.clone());
        }
        let kept: u64 = cache.pages.iter().map(|(k, p)| k.len() as u64 + p.weight()).sum();
        assert!(kept <= 64 * 1024, "{kept}");
        assert!(!cache.is_empty());
    }
}
