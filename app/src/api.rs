//! Server functions: Onramp's public HTTP API. Thin: parse the input into domain types, call the
//! domain, return its result.

use crate::gitlab::report::Report;
use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error of the API itself (not a finding about GitLab: those are in the [`Report`]).
/// JSON: `{"error": "rate_limited", "message": "…", "retry_after": 12}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub error: ApiErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorKind {
    BadRequest,
    RateLimited,
    Internal,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        #[cfg(feature = "ssr")]
        set_status(http::StatusCode::BAD_REQUEST);
        ApiError { error: ApiErrorKind::BadRequest, message: message.into(), retry_after: None }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request could not be read: the caller's mistake, answered 400, never 500.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_) | ServerFnErrorErr::MissingArg(_) => {
                ApiError::bad_request(
                    "The request could not be read: send the form fields base_url and token, form-urlencoded.",
                )
            }
            other => ApiError { error: ApiErrorKind::Internal, message: other.to_string(), retry_after: None },
        }
    }
}

#[cfg(feature = "ssr")]
fn set_status(status: http::StatusCode) {
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(status);
    }
}

/// Checks a GitLab connection: `POST /api/gitlab/validate`, form fields `base_url`, `token` and
/// optionally `ca_pem` (a private CA, PEM). Answers the [`Report`] as JSON, 200 even when checks
/// fail. A browser posting the form without JavaScript (`Accept: text/html`) is redirected to the
/// step that shows the result: step 13 when nothing failed, else step 12. The token is never in
/// the answer, a URL or a log.
#[server(prefix = "/api", endpoint = "gitlab/validate")]
pub async fn validate(
    base_url: Option<String>,
    token: Option<String>,
    ca_pem: Option<String>,
) -> Result<Report, ApiError> {
    ssr::validate(base_url, token, ca_pem).await
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::gitlab::check::{self, CheckInput};
    use crate::gitlab::report::StoredCheck;
    use crate::gitlab::token::GitlabToken;
    use crate::state::AppState;
    use crate::wizard::step_href;
    use axum::extract::ConnectInfo;
    use http::{header, HeaderMap, HeaderValue, StatusCode};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    pub async fn validate(
        base_url: Option<String>,
        token: Option<String>,
        ca_pem: Option<String>,
    ) -> Result<Report, ApiError> {
        let state = use_context::<AppState>().ok_or_else(|| internal("the server is not set up"))?;
        let headers: HeaderMap = leptos_axum::extract().await.unwrap_or_default();
        let browser = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));

        let ip = leptos_axum::extract::<ConnectInfo<SocketAddr>>()
            .await
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Err(wait) = state.check_limiter.check(ip) {
            set_status(StatusCode::TOO_MANY_REQUESTS);
            if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
                options.insert_header(header::RETRY_AFTER, HeaderValue::from(wait));
            }
            return Err(ApiError {
                error: ApiErrorKind::RateLimited,
                message: format!("Too many connection checks from your address. Try again in {wait} seconds."),
                retry_after: Some(wait),
            });
        }

        if !browser && (base_url.is_none() || token.is_none()) {
            return Err(ApiError::bad_request("Send the form fields base_url and token (form-urlencoded)."));
        }
        let typed_base_url = base_url.unwrap_or_default();
        let ca_pem = ca_pem.unwrap_or_default();
        let token = GitlabToken::parse(token.as_deref().unwrap_or_default());
        let today = time::OffsetDateTime::now_utc().date();
        let input = CheckInput { base_url: &typed_base_url, token, extra_ca_pem: Some(&ca_pem) };
        let report = check::run(&state.outbound, input, today).await;

        if browser {
            // Post/redirect/get: the result page reads the report by its id; the token is gone.
            let ok = report.ok;
            let base = crate::gitlab::base_url::BaseUrl::parse(&report.base_url).ok();
            let id = state.reports.put(StoredCheck { report: report.clone(), typed_base_url, extra_ca_pem: ca_pem });
            let target = if ok { step_href(13, base.as_ref()) } else { step_href(12, base.as_ref()) };
            let sep = if target.contains('?') { '&' } else { '?' };
            leptos_axum::redirect(&format!("{target}{sep}check={id}"));
        }
        Ok(report)
    }

    fn internal(message: &str) -> ApiError {
        set_status(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { error: ApiErrorKind::Internal, message: message.to_owned(), retry_after: None }
    }
}
