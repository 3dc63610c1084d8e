import { expect, test, type Browser, type Page } from "@playwright/test";
import { STEP, confirmedStep12, signUpNew, watchErrors } from "../helpers";
import { FAKE_GITLAB_2 } from "../playwright.config";

// Rotating a token revokes it in the fake GitLab, which every test shares: each run below uses
// a persona no other test uses (the service account with JavaScript, glpat-soon without).

// The two variants run in parallel, as every other spec: the flake that once made them serial was
// a rotated token lost to "database is locked" (a deferred SQLite transaction that read, then
// could not write once another connection had committed); such transactions now start with
// BEGIN IMMEDIATE (app/src/store/mod.rs, Db::begin_write).

async function newPage(browser: Browser, javaScriptEnabled: boolean): Promise<Page> {
  const context = await browser.newContext({ javaScriptEnabled });
  return context.newPage();
}

for (const [javaScriptEnabled, token, user] of [
  [true, "glpat-service", "@onramp-reader"],
  [false, "glpat-soon", "@jdoe"],
] as const) {
  test(`steps 5-9 show the service-account way; Rotate now replaces the token (JavaScript ${
    javaScriptEnabled ? "on" : "off"
  })`, async ({ browser }) => {
    const page = await newPage(browser, javaScriptEnabled);
    const errors = watchErrors(page);

    // The other way, folded away on step 6, opens with the keyboard.
    // The folded text is in the DOM either way: what the keyboard changes is that it is shown.
    await page.goto(STEP(6));
    const folded = page.locator("#service-account");
    const inside = folded.getByText("Add service account").first();
    await expect(folded).not.toHaveAttribute("open");
    await expect(inside).toBeHidden();
    const other = page.getByText("Using a service account instead (recommended for teams)");
    await other.focus();
    await page.keyboard.press("Enter");
    await expect(folded).toHaveAttribute("open", "");
    await expect(inside).toBeVisible();

    await signUpNew(page, `rot-${token}`);
    await confirmedStep12(page, FAKE_GITLAB_2);
    await page.getByLabel("Personal access token").fill(token);
    await page.getByRole("button", { name: "Integrate GitLab" }).click();
    // The fake GitLab speaks plain http: a warning, so Onramp asks once more.
    await page.getByRole("button", { name: "Integrate anyway" }).click();
    await expect(page).toHaveTitle(/^Step 13 of 13/);
    await expect(page.locator("#connected-user")).toHaveText(user);

    await page.goto("/integrations/gitlab");
    await page.getByRole("link", { name: FAKE_GITLAB_2 }).click();
    await expect(page.locator("#rotation-plan")).toContainText("Onramp rotates this token on");
    const before = await page.locator("#connected-token").textContent();
    await page.getByRole("button", { name: "Rotate now" }).click();
    await expect(page.locator("#status")).toContainText("The token was rotated");
    await expect(page.locator("#last-rotation")).toContainText("Rotated on");
    await expect(page.locator("#events")).toBeVisible();
    await expect(page.locator("ul.events")).toContainText("Onramp rotated the token");
    expect(await page.locator("#connected-token").textContent()).not.toEqual(before);

    // The new token works: GitLab answers the re-check with it.
    await page.getByRole("button", { name: "Re-check now" }).click();
    await expect(page.locator("#status")).toContainText("Checked again: the connection works.");
    expect(page.url()).not.toContain("glpat");
    expect(errors).toEqual([]);
  });
}
