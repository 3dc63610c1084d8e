//! Everything that knows GitLab: its URLs, its token, and (on the server) how to check a connection.

pub mod base_url;
pub mod links;
pub mod report;
pub mod rotation;
pub mod scope;

#[cfg(feature = "client")]
pub mod check;
#[cfg(feature = "client")]
pub mod discover;
#[cfg(feature = "client")]
pub mod guard;
#[cfg(feature = "client")]
pub mod outbound;
#[cfg(feature = "client")]
pub mod token;
