//! Runs the fake GitLab (see `server::fake_gitlab`) for end-to-end tests and benchmarks.
//! Usage: fake-gitlab [--port N] [--prefix /gitlab] [--latency-ms N] [--legacy]
//! Prints `listening on http://127.0.0.1:PORT` once ready.

use server::fake_gitlab::FakeGitlab;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let mut fake = FakeGitlab::default();
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--port" => port = value().parse().unwrap_or_else(|_| usage("--port: not a port number")),
            "--prefix" => fake.prefix = value(),
            "--latency-ms" => {
                fake.latency =
                    Duration::from_millis(value().parse().unwrap_or_else(|_| usage("--latency-ms: not a number")))
            }
            "--legacy" => fake.legacy = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| usage(&format!("cannot listen: {e}")));
    println!("listening on http://{}", listener.local_addr().expect("a bound address"));
    axum::serve(listener, fake.router()).await.expect("the fake GitLab runs");
}

fn usage(problem: &str) -> ! {
    eprintln!("fake-gitlab: {problem}\nusage: fake-gitlab [--port N] [--prefix /gitlab] [--latency-ms N] [--legacy]");
    std::process::exit(2)
}
