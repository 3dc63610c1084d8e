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
pub mod error;
pub mod invitations;
pub mod respond;
#[cfg(feature = "ssr")]
pub mod scope;
pub mod session;
pub mod tokens;
pub mod wizard;
pub mod workspaces;

pub use audit::*;
pub use checks::*;
pub use connections::*;
pub use error::{ApiError, ApiErrorKind};
pub use invitations::*;
pub use session::*;
pub use tokens::*;
pub use wizard::*;
pub use workspaces::*;

/// Today's date (UTC): what checks and rotations judge expiry against.
#[cfg(feature = "ssr")]
fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}
