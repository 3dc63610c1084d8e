//! Everything that knows GitLab: its URLs, its token, and (on the server) how to check a connection.

pub mod base_url;
pub mod links;
pub mod report;
pub mod rotation;
pub mod scope;

#[cfg(feature = "ssr")]
pub mod check;
#[cfg(feature = "ssr")]
pub mod discover;
#[cfg(feature = "ssr")]
pub mod guard;
#[cfg(feature = "ssr")]
pub mod outbound;
#[cfg(feature = "ssr")]
pub mod token;
