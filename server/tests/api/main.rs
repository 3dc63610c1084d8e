//! Onramp's black-box tests, one binary laid out like the API (as crates.io's and
//! zero-to-production's): each module drives a running Onramp over HTTP against the fake GitLab
//! (`crates/fake-gitlab`). One binary links the world once instead of once per file. Only
//! `crash.rs` (kill -9 of the release-style binary) and `fuzz.rs` (generated requests) are apart.
//!
//! Every test runs on SQLite, and again on PostgreSQL when `ONRAMP_TEST_DATABASE_URL` names a
//! server (`make unit` starts a throw-away one and reruns this same binary).

#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod attacks;
mod checks;
mod discovery;
mod embed;
mod fake_gitlab_world;
mod jobs;
mod operations;
mod platform;
mod rotation;
mod scope;
mod two_servers;
mod workspaces;
