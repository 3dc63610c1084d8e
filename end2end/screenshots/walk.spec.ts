import { expect, test, type Browser, type Page } from "@playwright/test";
import { STEP, confirmedStep12, signUpNew } from "../helpers";
import { FAKE_GITLAB, PLATFORM } from "../playwright.config";

// Drives Chromium through the wizard and writes what a newcomer sees to docs/screenshots/:
// steps 1-13, a failed check with its report, a saved connection, the picker of groups and
// projects and its preview, the workspace page with an invitation, the invitation as its
// recipient sees it, the API tokens and the audit log, a platform's user arriving on step 5 and
// an ended connect link; light and dark; 1280 and 360 px.
// The README shows a few of them (docs/screenshots/.gitignore keeps those and drops the rest).

const OUT = "../docs/screenshots";
const GITLAB_COM = encodeURIComponent("https://gitlab.com");

async function shoot(page: Page, name: string) {
  await page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true, animations: "disabled" });
}

async function context(browser: Browser, colorScheme: "light" | "dark", width: number) {
  return (await browser.newContext({ colorScheme, viewport: { width, height: 900 }, deviceScaleFactor: 1 })).newPage();
}

for (const colorScheme of ["light", "dark"] as const) {
  for (const width of [1280, 360]) {
    test(`screenshots, ${colorScheme}, ${width} px`, async ({ browser }) => {
      const suffix = `${colorScheme}-${width}`;
      const page = await context(browser, colorScheme, width);
      for (let n = 1; n <= 11; n++) {
        await page.goto(n >= 5 ? `${STEP(n)}?base=${GITLAB_COM}` : STEP(n));
        await shoot(page, `step-${String(n).padStart(2, "0")}-${suffix}`);
      }
      await signUpNew(page, `shots-${suffix}`);
      await confirmedStep12(page, FAKE_GITLAB);
      await shoot(page, `step-12-${suffix}`);
      await page.getByLabel("Personal access token").fill("glpat-noscope");
      await page.getByRole("button", { name: "Integrate GitLab" }).click();
      await expect(page.locator(".error-summary")).toBeVisible();
      await shoot(page, `step-12-report-${suffix}`);
      await page.getByLabel("Personal access token").fill("glpat-good");
      await page.getByRole("button", { name: "Integrate GitLab" }).click();
      await page.getByRole("button", { name: "Integrate anyway" }).click();
      await expect(page).toHaveTitle(/^Step 13 of 13/);
      await shoot(page, `step-13-${suffix}`);
      await page.goto("/integrations/gitlab");
      await page.locator(".connection a").first().click();
      await expect(page.locator("#rotation")).toBeVisible();
      await shoot(page, `connection-${suffix}`);
      await page.getByRole("link", { name: "Choose groups and projects" }).click();
      await expect(page.locator("#discovery")).toContainText("Listed");
      await shoot(page, `scope-${suffix}`);
      await page.locator('input[name="group_in"][value="acme/platform"]').check();
      await page.getByRole("button", { name: "Preview what this brings" }).click();
      await expect(page.locator("#preview-totals")).toBeVisible();
      await shoot(page, `scope-preview-${suffix}`);
      await page.goto("/settings/workspace");
      await page.getByLabel("Role", { exact: true }).selectOption("admin");
      await page.getByRole("button", { name: "Create invitation link" }).click();
      const link = await page.getByLabel("Invitation link").inputValue();
      await shoot(page, `workspace-${suffix}`);
      const invited = await context(browser, colorScheme, width);
      await invited.goto(link);
      await expect(invited.locator("#invitation")).toBeVisible();
      await shoot(invited, `invitation-${suffix}`);
      await page.goto("/settings/api-tokens");
      await page.getByLabel("Token name").fill("DevLake collector");
      await page.getByRole("button", { name: "Create token" }).click();
      await shoot(page, `api-tokens-${suffix}`);
      await page.goto("/settings/platform");
      await page.getByLabel("Key name").fill("Nightly collector");
      await page.getByLabel(/credentials:read/).check();
      await page.getByRole("button", { name: "Create key" }).click();
      await expect(page.locator("#new-platform-key")).toBeVisible();
      await shoot(page, `platform-keys-${suffix}`);
      await page.goto("/settings/audit");
      await shoot(page, `audit-${suffix}`);
      // Sent by a platform: its button, Onramp's step 5 with the banner, an ended link.
      const sent = await context(browser, colorScheme, width);
      await sent.goto(`${PLATFORM}/?customer=shots-${suffix}&user=lee-${suffix}`);
      await sent.getByRole("button", { name: "Integrate GitLab" }).click();
      await expect(sent.locator(".embed-banner")).toBeVisible();
      await shoot(sent, `embed-step-05-${suffix}`);
      await sent.goto("/connect/ended");
      await shoot(sent, `connect-ended-${suffix}`);
    });
  }
}
