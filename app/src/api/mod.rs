//! Server functions: Onramp's public HTTP API, one file per resource. Thin: parse the input into
//! domain types, call the domain, return its result — JSON for scripts, a redirect to the page that
//! shows the result for a browser posting a form (with or without JavaScript; [`respond`] chooses).
//!
//! Every function here except those under `/api/auth/` and `/api/wizard/` needs a signed-in user
//! or an Onramp API token; [`crate::auth::ssr::middleware`] enforces that, and CSRF, before they
//! run. Each `#[server]` declaration sits beside its body; errors are [`ApiError`], callers and
//! connections are found through [`caller`]. `scope` holds the plain axum handlers of the
//! scope (their paths carry the connection's id), on the same error, lookup and answers.

pub mod audit;
#[cfg(feature = "ssr")]
pub(crate) mod caller;
pub mod checks;
pub mod connections;
#[cfg(feature = "ssr")]
pub mod embed;
pub mod error;
pub mod invitations;
#[cfg(feature = "ssr")]
pub mod openapi;
#[cfg(feature = "ssr")]
pub mod platform;
pub mod platform_keys;
pub mod respond;
#[cfg(feature = "ssr")]
pub mod scope;
pub mod session;
pub mod tokens;
#[cfg(feature = "ssr")]
pub mod webhooks;
pub mod wizard;
pub mod workspaces;

pub use audit::*;
pub use checks::*;
pub use connections::*;
pub use error::{ApiError, ApiErrorKind};
pub use invitations::*;
pub use platform_keys::*;
pub use session::*;
pub use tokens::*;
pub use wizard::*;
pub use workspaces::*;

/// Today's date (UTC): what checks and rotations judge expiry against.
#[cfg(feature = "ssr")]
fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use leptos::server_fn::ServerFn;

    /// The forms name these constants; the URLs are the public API (scripts, the HTTP tests and
    /// Playwright use them), so a change of one is a change of the API, not a refactor.
    #[test]
    fn the_paths_forms_post_to_are_the_documented_urls() {
        let paths = [
            (Validate::PATH, "/api/gitlab/validate"),
            (AcceptWarnings::PATH, "/api/gitlab/accept"),
            (Recheck::PATH, "/api/gitlab/recheck"),
            (ReplaceToken::PATH, "/api/gitlab/replace"),
            (RotateToken::PATH, "/api/gitlab/rotate"),
            (Disconnect::PATH, "/api/gitlab/disconnect"),
            (CreateWorkspace::PATH, "/api/workspaces/create"),
            (SwitchWorkspace::PATH, "/api/workspaces/switch"),
            (RenameWorkspace::PATH, "/api/workspaces/rename"),
            (SetRole::PATH, "/api/workspaces/set_role"),
            (RemoveMember::PATH, "/api/workspaces/remove"),
            (LeaveWorkspace::PATH, "/api/workspaces/leave"),
            (CreateInvitation::PATH, "/api/invitations/create"),
            (RevokeInvitation::PATH, "/api/invitations/revoke"),
            (AcceptInvitation::PATH, "/api/invitations/accept"),
            (DeclineInvitation::PATH, "/api/invitations/decline"),
            (Signup::PATH, "/api/auth/signup"),
            (Login::PATH, "/api/auth/login"),
            (Logout::PATH, "/api/auth/logout"),
            (LogoutEverywhere::PATH, "/api/auth/logout_everywhere"),
            (ConfirmInstance::PATH, "/api/wizard/confirm_instance"),
            (CreateApiToken::PATH, "/api/tokens/create"),
            (RevokeApiToken::PATH, "/api/tokens/revoke"),
        ];
        for (path, url) in paths {
            assert_eq!(path, url);
        }
    }
}
