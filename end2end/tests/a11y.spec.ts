import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Browser, type Page } from "@playwright/test";
import { PASSWORD, STEP, confirmedStep12, signUpNew, tabTo } from "../helpers";
import { FAKE_GITLAB, PLATFORM } from "../playwright.config";

// An accessibility audit of every page Onramp has, with axe-core in Chromium: WCAG 2.0, 2.1 and
// 2.2 A and AA, in the light and the dark colour scheme, 1280 and 360 CSS px wide. A violation
// fails with its rule id and the selectors it hit. Beyond axe: no page scrolls sideways at 320 px.

const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];
const GITLAB_COM = encodeURIComponent("https://gitlab.com");

/** Pages anyone can open. */
const PUBLIC_PAGES = [
  ...Array.from({ length: 11 }, (_, i) => STEP(i + 1)),
  ...Array.from({ length: 11 }, (_, i) => `${STEP(i + 1)}?base=${GITLAB_COM}`),
  // An instance named by a link, not confirmed yet: "Is this your GitLab?"
  `${STEP(8)}?base=${encodeURIComponent(FAKE_GITLAB)}`,
  `${STEP(11)}?profile=${encodeURIComponent("not a url")}`,
  `${STEP(11)}?profile=${encodeURIComponent("https://gitlab.com/jdoe")}`,
  "/no-such-page",
  `${STEP(14)}`,
  "/login",
  "/signup",
  // A connect-session link that was used or ran out (410).
  "/connect/ended",
];

/** Pages of a signed-in account with a saved connection (`{id}`: the connection). */
const ACCOUNT_PAGES = [
  `${STEP(12)}?base=${GITLAB_COM}`,
  STEP(13),
  "/settings/integrations",
  "/integrations/gitlab",
  "/integrations/gitlab/connections/{id}",
  "/integrations/gitlab/connections/{id}/disconnect",
  "/integrations/gitlab/connections/{id}/scope",
  "/integrations/gitlab/connections/{id}/scope?q=platform&archived=1",
  "/integrations/gitlab/connections/{id}/scope/preview",
  "/settings/api-tokens",
  "/settings/platform",
  "/settings/platform?error=scopes",
  "/settings/workspace",
  "/settings/audit",
];

/** A new account with a saved connection; the pages it can see, and its step 12 with reports. */
async function signedIn(browser: Browser, colorScheme: "light" | "dark", width: number) {
  const context = await browser.newContext({ colorScheme, viewport: { width, height: 900 } });
  const page = await context.newPage();
  await signUpNew(page, "a11y");
  await confirmedStep12(page, FAKE_GITLAB);
  await page.getByLabel("Personal access token").fill("glpat-good");
  await page.getByRole("button", { name: "Integrate GitLab" }).click();
  // With warnings (plain http): the report, then "Integrate anyway".
  await expect(page.getByRole("button", { name: "Integrate anyway" })).toBeVisible();
  await audit(page, "step 12 with warnings");
  await page.getByRole("button", { name: "Integrate anyway" }).click();
  await expect(page).toHaveTitle(/^Step 13 of 13/);
  await page.goto("/integrations/gitlab");
  const href = await page.locator(".connection a").first().getAttribute("href");
  const id = href!.split("/").pop()!;
  // A failed check's report.
  await page.goto(`${STEP(12)}?base=${encodeURIComponent(FAKE_GITLAB)}`);
  await page.getByLabel("Personal access token").fill("glpat-expired");
  await page.getByRole("button", { name: "Integrate GitLab" }).click();
  await expect(page.locator(".error-summary")).toBeVisible();
  await audit(page, "step 12 with a failed check");
  return { page, id };
}

/** Pages that answer 404 on purpose; every other page must answer 200. */
const NOT_FOUND = new Set(["/no-such-page", STEP(14)]);

/**
 * Opens `path` and checks it is the page meant before it is audited: the status (an error page
 * would pass the audit in its place) and one level-1 heading. The picker and the preview are
 * audited once their lists are there, not while they still say they are loading.
 */
async function visit(page: Page, path: string) {
  const response = await page.goto(path);
  const template = path.replace(/\/connections\/[^/]+/, "/connections/{id}");
  const expected = NOT_FOUND.has(path) ? 404 : path === "/connect/ended" ? 410 : 200;
  expect(response?.status(), `status of ${path}`).toBe(expected);
  await expect(page.getByRole("heading", { level: 1 }), `the heading of ${path}`).toHaveCount(1);
  if (/\/scope(\?|$)/.test(template)) {
    await expect(page.locator("#discovery")).toContainText("Listed", { timeout: 15_000 });
    await expect(page.locator("#picker")).toBeVisible();
  }
  if (template.endsWith("/scope/preview")) {
    await expect(page.locator("#preview-totals")).toBeVisible({ timeout: 15_000 });
  }
}

async function audit(page: Page, what: string) {
  const results = await new AxeBuilder({ page }).withTags(TAGS).analyze();
  const found = results.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
  );
  expect(found, `${what} at ${page.url()}`).toEqual([]);
}

for (const colorScheme of ["light", "dark"] as const) {
  for (const width of [1280, 360]) {
    test(`every page passes axe (WCAG 2.2 AA), ${colorScheme}, ${width} px`, async ({ browser }) => {
      test.setTimeout(180_000);
      const anon = await (await browser.newContext({ colorScheme, viewport: { width, height: 900 } })).newPage();
      for (const path of PUBLIC_PAGES) {
        await visit(anon, path);
        await audit(anon, path);
      }
      // Forms with errors: log-in and sign-up sent empty.
      for (const [path, button] of [
        ["/login", "Log in"],
        ["/signup", "Create account"],
      ]) {
        await anon.goto(path);
        await anon.getByRole("button", { name: button }).click();
        await expect(anon.locator(".error-summary")).toBeVisible();
        await audit(anon, `${path} with errors`);
      }
      const { page, id } = await signedIn(browser, colorScheme, width);
      for (const path of ACCOUNT_PAGES) {
        await visit(page, path.replace("{id}", id));
        await audit(page, path);
        if (width === 360) {
          // The signed-in pages do not scroll sideways on a phone either.
          const overflow = await page.evaluate(
            () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
          );
          expect(overflow, `${path} at 360 px`).toBeLessThanOrEqual(0);
        }
      }
      // Sent by a platform: step 5 with the banner that names it.
      const sent = await (await browser.newContext({ colorScheme, viewport: { width, height: 900 } })).newPage();
      await sent.goto(`${PLATFORM}/?customer=a11y-${colorScheme}-${width}&user=a11y`);
      await sent.getByRole("button", { name: "Integrate GitLab" }).click();
      await expect(sent.locator(".embed-banner")).toBeVisible();
      await audit(sent, "step 5 sent by a platform");
    });
  }
}

test("no page scrolls sideways at 320 px", async ({ browser }) => {
  const page = await (await browser.newContext({ viewport: { width: 320, height: 800 } })).newPage();
  for (const path of PUBLIC_PAGES) {
    await page.goto(path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, path).toBeLessThanOrEqual(0);
  }
});

test("no page scrolls sideways at 200 % zoom (1280 px at twice the size)", async ({ browser }) => {
  const page = await (await browser.newContext({ viewport: { width: 640, height: 450 }, deviceScaleFactor: 2 })).newPage();
  for (const path of PUBLIC_PAGES) {
    await page.goto(path);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, path).toBeLessThanOrEqual(0);
  }
});

test("keyboard only: from step 1 to a saved connection with Tab, Enter and Space", async ({ page }) => {
  await page.goto(`/signup?next=${encodeURIComponent(STEP(1))}`);
  await tabTo(page, page.getByLabel("Email address"), "the e-mail field");
  await page.keyboard.type(`keys-${process.pid}-${Date.now()}@example.com`);
  await tabTo(page, page.getByLabel("Password"), "the password field");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await expect(page).toHaveTitle(/^Step 1 of 13/);
  for (let n = 1; n <= 11; n++) {
    if (n === 5) {
      // Which GitLab: typed, then the form's button pressed with Space.
      await tabTo(page, page.getByLabel("Which GitLab do you use?"), "the instance field");
      await page.keyboard.type(FAKE_GITLAB);
      await tabTo(page, page.getByRole("button", { name: "Use this GitLab" }), "Use this GitLab");
      await page.keyboard.press("Space");
      await expect(page.locator(".instance")).toContainText(FAKE_GITLAB);
    }
    await tabTo(page, page.getByRole("link", { name: "Continue" }), `Continue on step ${n}`);
    await page.keyboard.press("Enter");
    await expect(page).toHaveTitle(new RegExp(`^Step ${n + 1} of 13`));
  }
  await tabTo(page, page.getByLabel("Personal access token"), "the token field");
  await page.keyboard.type("glpat-good");
  await page.keyboard.press("Enter");
  const anyway = page.getByRole("button", { name: "Integrate anyway" });
  await expect(anyway).toBeVisible();
  await tabTo(page, anyway, "Integrate anyway");
  await page.keyboard.press("Space");
  await expect(page).toHaveTitle(/^Step 13 of 13/);
  await expect(page.locator("#connected-user")).toHaveText("@jdoe");
});
