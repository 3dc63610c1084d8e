//! Links into the user's own GitLab instance (pure): where to sign in, create the token, find the
//! profile. Pages call these; they never assemble GitLab URLs themselves.

use super::base_url::BaseUrl;

/// The scopes Onramp asks for. (The old guide's `create` is not a GitLab scope: GitLab drops it.)
pub const REQUIRED_SCOPES: [&str; 4] = ["api", "read_api", "read_user", "read_repository"];

/// The token name suggested on GitLab's token page.
pub const TOKEN_NAME: &str = "Onramp";

const TOKEN_DESCRIPTION: &str = "Lets Onramp read your projects for engineering analytics";

/// `{base}/users/sign_in`
pub fn sign_in(base: &BaseUrl) -> String {
    base.page("/users/sign_in")
}

/// The "Edit profile" page of the signed-in user (GitLab 16.7+ moved it under `/-/user_settings`).
pub fn user_settings(base: &BaseUrl) -> String {
    base.page("/-/user_settings/profile")
}

/// The personal access token page, prefilled with name, scopes and description (GitLab 16.7+).
pub fn token_page(base: &BaseUrl) -> String {
    base.page(&format!("/-/user_settings/personal_access_tokens?{}", prefill_query()))
}

/// The same page on GitLab 14.1–16.x (redirected until 17.0, gone on gitlab.com).
pub fn legacy_token_page(base: &BaseUrl) -> String {
    base.page(&format!("/-/profile/personal_access_tokens?{}", prefill_query()))
}

/// A user's profile page: `{base}/{username}`.
pub fn profile(base: &BaseUrl, username: &str) -> String {
    let username: String = url::form_urlencoded::byte_serialize(username.as_bytes()).collect();
    base.page(&format!("/{username}"))
}

fn prefill_query() -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("name", TOKEN_NAME)
        .append_pair("description", TOKEN_DESCRIPTION)
        .append_pair("scopes", &REQUIRED_SCOPES.join(","))
        .finish()
        // GitLab splits `scopes` on literal commas; keep them readable.
        .replace("%2C", ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> BaseUrl {
        BaseUrl::parse(s).unwrap()
    }

    #[test]
    fn links_keep_subpath_and_port() {
        let b = base("https://git.acme.io:8443/gitlab");
        assert_eq!(sign_in(&b), "https://git.acme.io:8443/gitlab/users/sign_in");
        assert_eq!(user_settings(&b), "https://git.acme.io:8443/gitlab/-/user_settings/profile");
        assert_eq!(
            token_page(&b),
            "https://git.acme.io:8443/gitlab/-/user_settings/personal_access_tokens?name=Onramp\
             &description=Lets+Onramp+read+your+projects+for+engineering+analytics\
             &scopes=api,read_api,read_user,read_repository"
        );
        assert!(legacy_token_page(&b)
            .starts_with("https://git.acme.io:8443/gitlab/-/profile/personal_access_tokens?name=Onramp&"));
        assert_eq!(profile(&b, "jdoe"), "https://git.acme.io:8443/gitlab/jdoe");
    }

    #[test]
    fn gitlab_com() {
        let b = base("gitlab.com");
        assert!(token_page(&b).starts_with("https://gitlab.com/-/user_settings/personal_access_tokens?"));
        assert_eq!(profile(&b, "a b"), "https://gitlab.com/a+b");
    }

    #[test]
    fn create_is_not_a_scope() {
        assert!(!REQUIRED_SCOPES.contains(&"create"));
    }
}
