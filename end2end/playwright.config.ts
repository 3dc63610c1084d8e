import { defineConfig, devices } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Onramp and a fake GitLab (crates/fake-gitlab), both from the release build, on loopback.
const PORT = process.env.ONRAMP_E2E_PORT ?? "3917";
const FAKE_PORT = process.env.ONRAMP_E2E_FAKE_PORT ?? "3918";
const FAKE_PORT_2 = process.env.ONRAMP_E2E_FAKE_PORT_2 ?? "3919";
const PLATFORM_PORT = process.env.ONRAMP_E2E_PLATFORM_PORT ?? "3920";
/** The example platform (examples/platform), which starts Onramp's wizard from its own page. */
export const PLATFORM = `http://127.0.0.1:${PLATFORM_PORT}`;
// One fresh SQLite database (and key file) for every run, shared by Onramp and the key the
// example platform makes with `onramp platform-key create`.
const DATA_DIR = process.env.ONRAMP_E2E_DATA_DIR ?? mkdtempSync(join(tmpdir(), "onramp-e2e-"));
export const FAKE_GITLAB = `http://127.0.0.1:${FAKE_PORT}`;
/** A second GitLab instance, for a workspace with two connections. */
export const FAKE_GITLAB_2 = `http://127.0.0.1:${FAKE_PORT_2}`;

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  // A stray test.only would silently skip the rest: refused everywhere, not only where CI is set.
  forbidOnly: true,
  reporter: [["list"]],
  use: { baseURL: `http://127.0.0.1:${PORT}`, trace: "off" },
  webServer: [
    {
      command: `../target/release/fake-gitlab --port ${FAKE_PORT}`,
      url: `${FAKE_GITLAB}/users/sign_in`,
      reuseExistingServer: false,
      stdout: "ignore",
    },
    {
      command: `../target/release/fake-gitlab --port ${FAKE_PORT_2}`,
      url: `${FAKE_GITLAB_2}/users/sign_in`,
      reuseExistingServer: false,
      stdout: "ignore",
    },
    {
      command: "./target/release/onramp",
      cwd: "..",
      url: `http://127.0.0.1:${PORT}/healthz`,
      reuseExistingServer: false,
      env: {
        ...(process.env as Record<string, string>),
        LEPTOS_SITE_ADDR: `127.0.0.1:${PORT}`,
        ONRAMP_DATA_DIR: DATA_DIR,
        DATABASE_URL: "",
        ONRAMP_SECRET_KEY: "",
        ONRAMP_OUTBOUND_ALLOW: "127.0.0.1",
        ONRAMP_CHECK_RATE_PER_MIN: "1000",
        ONRAMP_SIGNUPS_PER_IP_PER_HOUR: "1000",
      },
    },
    {
      command: "examples/platform/run.sh",
      cwd: "..",
      url: `${PLATFORM}/healthz`,
      reuseExistingServer: false,
      stdout: "ignore",
      env: {
        ...(process.env as Record<string, string>),
        ONRAMP_URL: `http://127.0.0.1:${PORT}`,
        ONRAMP_DATA_DIR: DATA_DIR,
        DATABASE_URL: "",
        ONRAMP_SECRET_KEY: "",
        PLATFORM_ADDR: `127.0.0.1:${PLATFORM_PORT}`,
      },
    },
  ],
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath: "/usr/bin/chromium",
          args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
          ],
        },
      },
    },
  ],
});
