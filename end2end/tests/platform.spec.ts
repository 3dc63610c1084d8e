import { expect, test } from "@playwright/test";
import { watchErrors } from "../helpers";
import { FAKE_GITLAB, PLATFORM } from "../playwright.config";

// The platform side (issue 22), as an engineering lead meets it: the example platform's own
// "Integrate GitLab" button opens Onramp on step 5 for its user, who walks steps 5–13 against the
// fake GitLab, picks a project, and goes "Back to Acme Analytics", which shows the connection;
// the platform has heard connect_session.completed, connection.created and scope.updated (each
// signature verified with the Standard Webhooks library), and its collector counts the chosen
// project's merge requests with the token from /credentials. With and without JavaScript.

for (const javaScriptEnabled of [true, false]) {
  test(`a platform's Integrate button, the wizard, the way back, events and the collector (JavaScript ${
    javaScriptEnabled ? "on" : "off"
  })`, async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled });
    const page = await context.newPage();
    const errors = watchErrors(page);
    const customer = `cust-${javaScriptEnabled ? "js" : "nojs"}-${Date.now()}`;

    await page.goto(`${PLATFORM}/?customer=${customer}&user=lee`);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Settings → Integrations");
    await page.getByRole("button", { name: "Integrate GitLab" }).click();

    // On Onramp, signed in as the platform's user, on step 5, told who sent them.
    await expect(page).toHaveURL(/\/integrations\/gitlab\/step\/5$/);
    const banner = page.getByRole("complementary", { name: "Sent by Acme Analytics" });
    await expect(banner).toContainText(`${customer} (Acme Analytics)`);
    for (let step = 5; step < 12; step++) {
      await page.getByRole("link", { name: "Continue" }).click();
      await expect(page).toHaveTitle(new RegExp(`^Step ${step + 1} of 13`));
    }
    await page.getByLabel("GitLab base URL").fill(FAKE_GITLAB);
    await page.getByLabel("Personal access token").fill("glpat-good");
    // What was typed is what is sent (a page swapped in after typing would have lost it).
    await expect(page.getByLabel("GitLab base URL")).toHaveValue(FAKE_GITLAB);
    await expect(page.getByLabel("Personal access token")).toHaveValue("glpat-good");
    await page.getByRole("button", { name: "Integrate GitLab" }).click();
    await page.getByRole("button", { name: "Integrate anyway" }).click();
    await expect(page).toHaveTitle(/^Step 13 of 13/);
    await expect(page.getByRole("link", { name: "Back to Acme Analytics" }).first()).toBeVisible();

    // Picks one project.
    await page.getByRole("link", { name: "Choose groups and projects" }).click();
    await expect(async () => {
      if (!javaScriptEnabled) await page.reload();
      await expect(page.locator("#discovery")).toContainText("Listed", { timeout: 500 });
    }).toPass({ timeout: 15_000 });
    await page.locator('input[name="project_in"][value="acme/platform/api"]').check();
    await page.getByRole("button", { name: "Apply ticks" }).click();
    await page.getByRole("button", { name: "Preview what this brings" }).click();
    await page.getByRole("button", { name: "Save selection" }).click();
    await expect(page.getByText("Selection saved.")).toBeVisible();

    // Back on the platform, which confirmed the connection with Onramp's API.
    await banner.getByRole("link", { name: "Back to Acme Analytics" }).click();
    await expect(page).toHaveURL(new RegExp(`^${PLATFORM}/integrations/gitlab/done\\?`));
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("You have now integrated GitLab");
    const connection = new URL(page.url()).searchParams.get("connection_id");
    expect(connection).toBeTruthy();
    await expect(page.locator("#connected")).toContainText(connection!);
    // The events arrive by webhook, each verified (the page lists what the receiver accepted).
    await expect(async () => {
      await page.reload();
      for (const type of ["connect_session.completed", "connection.created", "scope.updated"]) {
        await expect(page.locator("#events")).toContainText(type, { timeout: 200 });
      }
    }).toPass({ timeout: 15_000 });

    await page.getByRole("button", { name: "Collect merge requests" }).click();
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Merge requests collected");
    const row = page.locator("#collected tbody tr");
    await expect(row).toHaveCount(1);
    await expect(row.locator("th")).toHaveText("acme/platform/api");
    expect(Number(await row.locator("td").textContent())).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await context.close();
  });
}
