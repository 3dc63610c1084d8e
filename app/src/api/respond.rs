//! Redirect or JSON: the one place that chooses how an answer goes back. A browser posting a form
//! (it accepts HTML) is sent to the page that shows the result, with or without JavaScript; a
//! script gets the JSON the server function returns. Handlers call [`to_page`] once per outcome.

/// Who is asking, judged by the request's `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asker {
    /// A browser posting a form: answered with a redirect to a page.
    Browser,
    /// A script (curl, an API client): answered with JSON.
    Script,
}

impl Asker {
    /// A browser sends `text/html` in `Accept` when it posts a form; scripts send
    /// `application/json`, `*/*` or nothing.
    pub fn from_accept(accept: Option<&str>) -> Asker {
        match accept {
            Some(accept) if accept.contains("text/html") => Asker::Browser,
            _ => Asker::Script,
        }
    }

    /// The page to send this asker to, if it is to be sent to one.
    pub fn page(self, page: &str) -> Option<&str> {
        match self {
            Asker::Browser => Some(page),
            Asker::Script => None,
        }
    }
}

/// Who is asking the server function that is running.
#[cfg(feature = "ssr")]
pub(crate) fn asker() -> Asker {
    let parts = leptos::prelude::use_context::<http::request::Parts>();
    Asker::from_accept(parts.as_ref().and_then(|p| p.headers.get(http::header::ACCEPT)).and_then(|v| v.to_str().ok()))
}

/// A browser posting a form is asking (see [`Asker`]).
#[cfg(feature = "ssr")]
pub(crate) fn from_browser() -> bool {
    asker() == Asker::Browser
}

/// Sends a browser to `page` (302); a script's answer stays the JSON the function returns.
#[cfg(feature = "ssr")]
pub(crate) fn to_page(page: impl AsRef<str>) {
    if let Some(page) = asker().page(page.as_ref()) {
        leptos_axum::redirect(page);
    }
}

/// `path` with `key=value` added to its query (the value form-encoded).
#[cfg(feature = "ssr")]
pub(crate) fn with_query(path: &str, key: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{path}{sep}{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_posting_a_form_goes_to_the_page() {
        for accept in ["text/html", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"] {
            assert_eq!(Asker::from_accept(Some(accept)), Asker::Browser, "{accept}");
            assert_eq!(Asker::from_accept(Some(accept)).page("/settings/workspace"), Some("/settings/workspace"));
        }
    }

    #[test]
    fn a_script_gets_json() {
        for accept in [None, Some("application/json"), Some("*/*"), Some("")] {
            assert_eq!(Asker::from_accept(accept), Asker::Script, "{accept:?}");
            assert_eq!(Asker::from_accept(accept).page("/settings/workspace"), None);
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn a_query_is_added_form_encoded() {
        assert_eq!(with_query("/a", "k", "x y&z"), "/a?k=x+y%26z");
        assert_eq!(with_query("/a?b=1", "k", "v"), "/a?b=1&k=v");
    }
}
