//! `ApiError`: the one error every API answer uses, server functions and the scope's axum handlers
//! alike. `From` impls turn a storage failure or a rate-limit refusal into the right answer, so
//! handlers write `?`. JSON: `{"error": "rate_limited", "message": "…", "retry_after": 12}`.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error of the API itself (not a finding about GitLab: those are in the
/// [`Report`](crate::gitlab::report::Report)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct ApiError {
    pub error: ApiErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorKind {
    BadRequest,
    Unauthorized,
    /// Signed in, but the role in that workspace does not allow it (403).
    Forbidden,
    NotFound,
    /// It exists already (409): the message says which.
    Conflict,
    /// What was asked for needs something not there yet, e.g. a preview before discovery (409).
    NotReady,
    RateLimited,
    Internal,
    /// Onramp is at capacity for this kind of work (503, with `Retry-After`).
    Busy,
}

impl ApiErrorKind {
    /// The HTTP status this kind of error is answered with.
    #[cfg(feature = "ssr")]
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ApiErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ApiErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ApiErrorKind::NotFound => StatusCode::NOT_FOUND,
            ApiErrorKind::Conflict | ApiErrorKind::NotReady => StatusCode::CONFLICT,
            ApiErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl ApiError {
    /// An error of this kind. Inside a server function it also sets the answer's status (unless a
    /// browser is being redirected already, see [`set_status`]).
    pub fn new(error: ApiErrorKind, message: impl Into<String>) -> Self {
        #[cfg(feature = "ssr")]
        set_status(error.status());
        ApiError { error, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::Internal, message)
    }

    /// Try again in `seconds`: the body says so, and (ssr) so does the `Retry-After` header.
    #[cfg(feature = "ssr")]
    fn retry_after(mut self, seconds: u64) -> Self {
        if let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            options.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        self.retry_after = Some(seconds);
        self
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request could not be read: the caller's mistake, answered 400, never 500.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_) | ServerFnErrorErr::MissingArg(_) => {
                ApiError::bad_request(
                    "The request could not be read: send the documented form fields, form-urlencoded.",
                )
            }
            other => ApiError::new(ApiErrorKind::Internal, other.to_string()),
        }
    }
}

/// Sets a server function's answer status, unless a browser is already being redirected to the
/// page that explains the problem: a form posted without JavaScript must get the redirect (302),
/// not a 400 whose `Location` no browser follows. Outside a server function (the scope's axum
/// handlers) there is nothing to set: [`ApiError`]'s `IntoResponse` answers the status.
#[cfg(feature = "ssr")]
pub fn set_status(status: http::StatusCode) {
    if let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        let redirecting =
            options.0.read().map(|parts| parts.status.is_some_and(|s| s.is_redirection())).unwrap_or(false);
        if !redirecting {
            options.set_status(status);
        }
    }
}

/// Seconds a client told "busy" should wait before trying again.
#[cfg(feature = "ssr")]
const BUSY_RETRY_SECONDS: u64 = 2;

/// A storage failure: "busy" (503, try again in a moment) when the store is at capacity, else an
/// internal error whose cause is logged, never answered.
#[cfg(feature = "ssr")]
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::Busy(what) = e {
            tracing::warn!(what, "at capacity");
            return ApiError::new(
                ApiErrorKind::Busy,
                format!("Onramp is busy. Try again in {BUSY_RETRY_SECONDS} seconds."),
            )
            .retry_after(BUSY_RETRY_SECONDS);
        }
        tracing::error!(error = %e, "storage failed");
        ApiError::internal("Something went wrong on Onramp's side. Try again in a moment.")
    }
}

/// A rate limiter's refusal ([`Limiter::check`](crate::state::Limiter::check) answers the wait):
/// `what` names what was counted, as the message says ("Too many {what}.").
#[cfg(feature = "ssr")]
#[derive(Clone, Copy, Debug)]
pub struct RateLimited {
    pub wait: u64,
    pub what: &'static str,
}

#[cfg(feature = "ssr")]
impl RateLimited {
    /// `limiter.check(key).map_err(RateLimited::of("log-in attempts"))?`
    pub fn of(what: &'static str) -> impl Fn(u64) -> RateLimited {
        move |wait| RateLimited { wait, what }
    }
}

#[cfg(feature = "ssr")]
impl From<RateLimited> for ApiError {
    fn from(RateLimited { wait, what }: RateLimited) -> Self {
        metrics::counter!("onramp_rate_limited_total", "limit" => what).increment(1);
        ApiError::new(ApiErrorKind::RateLimited, format!("Too many {what}. Try again in {wait} seconds."))
            .retry_after(wait)
    }
}

/// The scope's axum handlers answer an [`ApiError`] as the server functions do: its status, the
/// same JSON, and `Retry-After` when it says when to try again.
#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        use http::{header, HeaderValue};
        let status = self.error.status();
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut answer =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
        if let Some(wait) = self.retry_after {
            answer.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        answer
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[test]
    fn a_refusal_says_when_to_try_again_in_the_body_and_the_header() {
        let e = ApiError::from(RateLimited { wait: 12, what: "log-in attempts" });
        assert_eq!(e.error, ApiErrorKind::RateLimited);
        assert_eq!(e.message, "Too many log-in attempts. Try again in 12 seconds.");
        let answer = e.into_response();
        assert_eq!(answer.status(), 429);
        assert_eq!(answer.headers()[http::header::RETRY_AFTER], "12");
    }

    #[test]
    fn a_busy_store_is_503_and_any_other_failure_500_without_its_cause() {
        let busy = ApiError::from(crate::store::StoreError::Busy("password hashing"));
        assert_eq!((busy.error, busy.retry_after), (ApiErrorKind::Busy, Some(BUSY_RETRY_SECONDS)));
        let failed = ApiError::from(crate::store::StoreError::Config("secret detail".into()));
        assert_eq!(failed.error, ApiErrorKind::Internal);
        assert!(!failed.message.contains("secret detail"));
        assert_eq!(failed.into_response().status(), 500);
    }

    #[test]
    fn the_json_leaves_out_retry_after_when_there_is_none() {
        let e = ApiError::not_found("nothing here");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"error":"not_found","message":"nothing here"}"#);
        let e = ApiError::new(ApiErrorKind::NotReady, "later");
        assert_eq!(serde_json::to_value(&e).unwrap()["error"], "not_ready");
    }
}
