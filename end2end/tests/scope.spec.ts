import { expect, test, type Page } from "@playwright/test";
import { confirmedStep12, signUpNew, watchErrors } from "../helpers";
import { FAKE_GITLAB } from "../playwright.config";

// After step 13: the picker lists what the token reaches, a group is included and one of its
// projects left out, the preview counts, the selection is saved, and a project created in the
// included group afterwards shows up as new and included after a refresh. With and without
// JavaScript. The project is added to the shared fake GitLab under a name of this run's own.

/** Waits for the list (the page updates by itself with JavaScript; without, the reader reloads). */
async function listed(page: Page, javaScriptEnabled: boolean) {
  if (javaScriptEnabled) {
    await expect(page.locator("#discovery")).toContainText("Listed", { timeout: 15_000 });
    return;
  }
  await expect(async () => {
    await page.reload();
    await expect(page.locator("#discovery")).toContainText("Listed", { timeout: 200 });
  }).toPass({ timeout: 15_000 });
}

for (const javaScriptEnabled of [true, false]) {
  test(`choose groups and projects, preview, save, and pick up a new project (JavaScript ${
    javaScriptEnabled ? "on" : "off"
  })`, async ({ browser, request }) => {
    const context = await browser.newContext({ javaScriptEnabled });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await signUpNew(page, `scope-${javaScriptEnabled}`);
    await confirmedStep12(page, FAKE_GITLAB);
    await page.getByLabel("Personal access token").fill("glpat-good");
    await page.getByRole("button", { name: "Integrate GitLab" }).click();
    await page.getByRole("button", { name: "Integrate anyway" }).click();
    await expect(page).toHaveTitle(/^Step 13 of 13/);

    await page.getByRole("link", { name: "Choose groups and projects" }).click();
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Choose what Onramp reads");
    await listed(page, javaScriptEnabled);
    // Each group's role is on its own row (the filter's options name every role, and acme is
    // Maintainer too: a check on the whole list would pass with the row's role missing).
    const groupRow = (path: string) =>
      page.locator("#groups-title ~ ul.choices > li.choice", {
        has: page.locator(".path", { hasText: new RegExp(`^${path.replace("/", "\\/")}$`) }),
      });
    await expect(groupRow("acme/platform")).toHaveCount(1);
    await expect(groupRow("acme/platform").locator("label")).toContainText("Maintainer");
    await expect(groupRow("contractors").locator("label")).toContainText("Guest");
    await expect(groupRow("contractors").locator("label")).not.toContainText("Maintainer");
    await expect(page.locator("#picker")).toContainText("contractors/portal");
    await expect(page.locator("#picker")).toContainText("Ask one of its maintainers for Reporter");

    // Search (a GET form), include the group, leave one of its projects out.
    await page.getByLabel("Search by name or path").fill("platform");
    await page.getByRole("button", { name: "Search" }).click();
    await expect(page).toHaveURL(/q=platform/);
    await expect(page.locator("#picker")).not.toContainText("acme/website");
    await page.locator('input[name="group_in"][value="acme/platform"]').check();
    await page.getByRole("button", { name: "Apply ticks" }).click();
    await expect(page.locator('input[name="project_in"][value="acme/platform/api"]')).toBeChecked();
    await expect(page.locator("#selection-count")).toContainText("not saved yet");
    await page.locator('input[name="project_in"][value="acme/platform/worker"]').uncheck();
    await page.getByRole("button", { name: "Preview what this brings" }).click();

    await expect(page.getByRole("heading", { level: 1 })).toHaveText("What this selection brings");
    await expect(page.locator("#preview")).toContainText("acme/platform/api");
    await expect(page.locator("#preview")).not.toContainText("acme/platform/worker");
    await expect(page.locator("#preview-totals")).toContainText("Total");
    await page.getByRole("button", { name: "Save selection" }).click();
    await expect(page.getByText("Selection saved.")).toBeVisible();
    await expect(page.locator("#scope-chosen")).toContainText("1 whole group");
    await expect(page.locator("#scope-chosen")).toContainText("1 left out");

    // A project created in the group after the list was made.
    const created = `acme/platform/svc-${javaScriptEnabled ? "js" : "nojs"}-${Date.now()}`;
    const added = await request.post(`${FAKE_GITLAB}/_fake/projects`, { data: { path_with_namespace: created } });
    expect(added.status()).toBe(201);
    await page.getByRole("link", { name: "Choose groups and projects" }).click();
    await page.getByRole("button", { name: "Refresh the list" }).click();
    // Searching until the new list is there (the search form reloads the page either way).
    const row = page.locator("li.choice", { hasText: created });
    await expect(async () => {
      await page.getByLabel("Search by name or path").fill(created);
      await page.getByRole("button", { name: "Search" }).click();
      await expect(row).toContainText("New since the last list", { timeout: 500 });
    }).toPass({ timeout: 15_000 });
    await expect(row.locator('input[name="project_in"]')).toBeChecked();
    expect(errors).toEqual([]);
    await context.close();
  });
}
