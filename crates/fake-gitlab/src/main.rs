//! Runs the fake GitLab (see the `fake_gitlab` library) for end-to-end tests and benchmarks.
//! Usage: see `USAGE`. Prints `listening on http://127.0.0.1:PORT` once ready.

use fake_gitlab::FakeGitlab;
use std::time::Duration;

const USAGE: &str = "usage: fake-gitlab [--port N] [--prefix /gitlab] [--latency-ms N] [--legacy] [--no-associations]
                   [--groups N] [--projects M] [--burst-429 N] [--retry-after-429 S] [--rate-limit-remaining N]
  --port N                  listen on 127.0.0.1:N (default: any free port)
  --prefix /gitlab          a relative URL root
  --latency-ms N            wait N ms before every answer
  --legacy                  GitLab 14: no /metadata, no /personal_access_tokens/self, no associations
  --no-associations         GitLab before 17.4: /personal_access_tokens/self/associations answers 404
  --groups N --projects M   a generated world of N nested groups and M projects instead of the small one
                            (either alone: 500 groups, or 10,000 projects)
  --burst-429 N             every Nth request to /groups, /projects or the associations answers 429
  --retry-after-429 S       those 429s say Retry-After: S
  --rate-limit-remaining N  RateLimit-Remaining is always N
Tokens and the world: see crates/fake-gitlab/src/lib.rs. POST /_fake/projects {\"path_with_namespace\": \"acme/x\"}
adds a project.";

#[tokio::main]
async fn main() {
    let mut fake = FakeGitlab::default();
    let mut port = 0u16;
    let (mut groups, mut projects) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        let number =
            |v: String, flag: &str| v.parse::<u64>().unwrap_or_else(|_| usage(&format!("{flag}: not a number")));
        match arg.as_str() {
            "--port" => port = value().parse().unwrap_or_else(|_| usage("--port: not a port number")),
            "--prefix" => fake.prefix = value(),
            "--latency-ms" => fake.latency = Duration::from_millis(number(value(), "--latency-ms")),
            "--legacy" => fake.legacy = true,
            "--no-associations" => fake.no_associations = true,
            "--groups" => groups = Some(count(number(value(), "--groups"))),
            "--projects" => projects = Some(count(number(value(), "--projects"))),
            "--burst-429" => fake.burst_429_every = Some(count(number(value(), "--burst-429"))).filter(|n| *n > 0),
            "--retry-after-429" => fake.retry_after_429 = Some(number(value(), "--retry-after-429")),
            "--rate-limit-remaining" => fake.rate_limit_remaining = Some(number(value(), "--rate-limit-remaining")),
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if groups.is_some() || projects.is_some() {
        fake.world = FakeGitlab::big(groups.unwrap_or(500), projects.unwrap_or(10_000)).world;
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| usage(&format!("cannot listen: {e}")));
    println!("listening on http://{}", listener.local_addr().expect("a bound address"));
    axum::serve(listener, fake.router()).await.expect("the fake GitLab runs");
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or_else(|_| usage("too large"))
}

fn usage(problem: &str) -> ! {
    eprintln!("fake-gitlab: {problem}\n{USAGE}");
    std::process::exit(2)
}
