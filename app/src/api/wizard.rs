//! The wizard's own server function: `/api/wizard/confirm_instance` ("Yes, this is my GitLab"),
//! remembered in this browser. Public, like the steps that ask.

use super::error::ApiError;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::caller::{https, parts},
    super::respond::{to_page, with_query},
    super::session::set_cookie,
    crate::gitlab::base_url::BaseUrl,
    crate::wizard::step_href,
};

/// `POST /api/wizard/confirm_instance`: `base` (or `profile`, a profile URL, as on step 11) and
/// `step`. The reader confirms that the GitLab a link named, or that they typed, is theirs:
/// remembered in this browser, then back to the step, which now links into it. Public, like the
/// steps that ask. Answers the base URL.
#[server(prefix = "/api", endpoint = "wizard/confirm_instance")]
pub async fn confirm_instance(
    base: Option<String>,
    profile: Option<String>,
    step: Option<String>,
) -> Result<String, ApiError> {
    use crate::trust::{add_confirmed, parse_confirmed, CONFIRMED_COOKIE};
    let step = step
        .as_deref()
        .and_then(crate::wizard::Step::from_segment)
        .map(|s| s.number)
        .filter(|n| (5..=12).contains(n))
        .unwrap_or(5);
    // Step 11 sends the profile URL it turns into the base; the page shows the result.
    let from_profile = profile.is_some();
    let (parsed, back_to) = match profile {
        Some(profile) => {
            let back = with_query(&step_href(11, None), "profile", &profile);
            (BaseUrl::from_profile_url(&profile), back)
        }
        None => {
            let typed = base.unwrap_or_default();
            let back = with_query(&step_href(step, None), "base", &typed);
            (BaseUrl::parse(&typed), back)
        }
    };
    let base = match parsed {
        Ok(base) => base,
        Err(e) => {
            // Back to the step, which explains what is wrong with the address.
            to_page(&back_to);
            return Err(ApiError::bad_request(e.to_string()));
        }
    };
    let existing = parts()
        .and_then(|p| crate::auth::ssr::cookie(&p.headers, CONFIRMED_COOKIE))
        .map(|v| parse_confirmed(&v))
        .unwrap_or_default();
    let value = add_confirmed(&existing, base.host());
    set_cookie(format!(
        "{CONFIRMED_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{}",
        if https() { "; Secure" } else { "" }
    ));
    // Step 11 shows the base it found; the other steps now link into the instance.
    to_page(if from_profile { back_to } else { step_href(step, Some(&base)) });
    Ok(base.to_string())
}
