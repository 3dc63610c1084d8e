import { expect, test, type Page } from "@playwright/test";
import { STEP, watchErrors } from "../helpers";
import { FAKE_GITLAB } from "../playwright.config";

let accounts = 0;
/** Creates an Onramp account (and so logs in), with or without JavaScript. */
async function signUp(page: Page, next = "/settings/integrations") {
  const email = `e2e-${process.pid}-${Date.now()}-${accounts++}@example.com`;
  await page.goto(`/signup?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill("correct horse battery staple");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(new RegExp(next.replace(/[?]/g, "\\?") + "$"));
  return email;
}

/**
 * Opens step 12 for `base` as a shared link would, and confirms the instance the way a reader
 * does ("Yes, this is my GitLab"): until then the field is not prefilled.
 */
async function openStep12(page: Page, base = FAKE_GITLAB) {
  await page.goto(`${STEP(12)}?base=${encodeURIComponent(base)}`);
  await expect(page.getByLabel("GitLab base URL")).toHaveValue("");
  await page.getByRole("button", { name: "Yes, this is my GitLab" }).click();
  await expect(page.getByLabel("GitLab base URL")).toHaveValue(base);
}

/** Waits until the WASM island has hydrated (it marks <html data-enhanced>). */
async function hydrated(page: Page) {
  await expect(page.locator("html")).toHaveAttribute("data-enhanced", "");
}

test.describe("with JavaScript", () => {
  test("walk from step 1 to 13 with Continue, client-side", async ({ page }) => {
    const errors = watchErrors(page);
    const email = await signUp(page, STEP(1));
    await expect(page.locator("main")).toContainText(email);
    await hydrated(page);
    // A marker that only survives if no page load happens: navigation is client-side.
    await page.evaluate(() => ((window as any).__onramp_marker = 42));

    for (let n = 1; n <= 10; n++) {
      await expect(page).toHaveURL(new RegExp(`${STEP(n)}(\\?|$)`));
      await expect(page).toHaveTitle(new RegExp(`^Step ${n} of 13: .* · Onramp$`));
      await expect(page.locator("h1")).toHaveCount(1);
      await expect(page.locator('[aria-current="step"]')).toContainText(await page.locator("h1").innerText());
      await page.getByRole("link", { name: "Continue" }).click();
      // focus moves to the new step's heading
      await expect(page.locator("h1#step-title")).toBeFocused();
    }
    await expect(page).toHaveTitle(/^Step 11 of 13/);
    await page.getByLabel("Your GitLab profile URL").fill(`${FAKE_GITLAB}/jdoe`);
    await page.getByRole("button", { name: "Find base URL" }).click();
    await expect(page.locator("#derived-base")).toHaveText(FAKE_GITLAB);
    await page.getByRole("link", { name: "Continue" }).click();

    await expect(page).toHaveTitle(/^Step 12 of 13/);
    await expect(page.getByLabel("GitLab base URL")).toHaveValue(FAKE_GITLAB);
    await page.getByLabel("Personal access token").fill("glpat-good");
    await page.getByRole("button", { name: "Integrate GitLab" }).click();
    // The fake GitLab speaks plain http: a warning, so Onramp asks once more.
    await expect(page.locator("#check-reachable")).toContainText("unencrypted");
    await page.getByRole("button", { name: "Integrate anyway" }).click();

    await expect(page).toHaveTitle(/^Step 13 of 13/);
    await expect(page).toHaveURL(/step\/13\?base=/);
    await expect(page.locator(".panel-title")).toHaveText("You have successfully integrated GitLab");
    await expect(page.locator("#connected-user")).toHaveText("@jdoe");
    await expect(page.locator("#connected-base")).toHaveText(FAKE_GITLAB);
    expect(await page.evaluate(() => (window as any).__onramp_marker)).toBe(42);
    // Back works through the client-side history.
    await page.goBack();
    await expect(page).toHaveTitle(/Step 12 of 13/);
    expect(errors).toEqual([]);
  });

  test("a deep link to step 8 carries the instance into the token link, once confirmed", async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto(`${STEP(8)}?base=${encodeURIComponent("https://git.acme.io:8443/gitlab")}`);
    // A link names the instance: no link into it until the reader says it is theirs.
    await expect(page.getByRole("heading", { name: "Is this your GitLab?" })).toBeVisible();
    await expect(page.locator(".instance-host")).toHaveText("git.acme.io");
    await expect(page.locator('a[href^="https://git.acme.io"]')).toHaveCount(0);
    await hydrated(page);
    await page.getByRole("button", { name: "Yes, this is my GitLab" }).click();
    const link = page.getByRole("link", { name: /Open the token page/ });
    await expect(link).toHaveAttribute(
      "href",
      "https://git.acme.io:8443/gitlab/-/user_settings/personal_access_tokens?name=Onramp&description=Lets+Onramp+read+your+projects+for+engineering+analytics&scopes=api,read_api,read_user,read_repository",
    );
    await expect(link).toHaveAttribute("target", "_blank");
    await expect(page.getByRole("link", { name: "Continue" })).toHaveAttribute(
      "href",
      `${STEP(9)}?base=${encodeURIComponent("https://git.acme.io:8443/gitlab")}`,
    );
    // remembered in this browser
    await page.goto(`${STEP(10)}?base=${encodeURIComponent("https://git.acme.io:8443/gitlab")}`);
    await expect(page.getByRole("heading", { name: "Is this your GitLab?" })).toHaveCount(0);
    await expect(page.getByRole("link", { name: /Open your user settings/ })).toBeVisible();
    expect(errors).toEqual([]);
  });

  test("step 12 shows a pending state, then the error summary takes focus", async ({ page }) => {
    const errors = watchErrors(page);
    // The answer is held until the pending state has been seen: no timing involved.
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route("**/api/gitlab/validate", async (route) => {
      await held;
      await route.continue();
    });
    await signUp(page);
    await openStep12(page);
    await hydrated(page);
    await page.getByLabel("Personal access token").fill("glpat-noscope");
    const button = page.getByRole("button", { name: "Integrate GitLab" });
    await button.click();
    const pending = page.locator("form.connect-form button[type=submit]");
    await expect(pending).toHaveText("Checking the connection…");
    await expect(pending).toHaveAttribute("aria-disabled", "true");
    release();
    await expect(page).toHaveTitle(/^Error: Step 12 of 13/);
    const summary = page.locator(".error-summary");
    await expect(summary).toBeFocused();
    await expect(summary).toContainText("Missing scopes: read_repository");
    await expect(page.locator("#check-scopes").getByRole("link", { name: "Fix this in step 8" })).toHaveAttribute(
      "href",
      `${STEP(8)}?base=${encodeURIComponent(FAKE_GITLAB)}`,
    );
    // the token is never shown again
    await expect(page.getByLabel("Personal access token")).toHaveValue("");
    expect(await page.content()).not.toContain("glpat-noscope");
    expect(page.url()).not.toContain("glpat");
    expect(errors).toEqual([]);
  });

  test("keyboard: the skip link comes first and the form is reachable", async ({ page }) => {
    await signUp(page);
    await openStep12(page);
    await page.reload(); // a fresh page load: focus starts at the top
    await hydrated(page);
    await page.keyboard.press("Tab");
    await expect(page.getByRole("link", { name: "Skip to main content" })).toBeFocused();
    await page.keyboard.press("Enter");
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press("Tab");
      if (await page.getByLabel("Personal access token").evaluate((el) => el === document.activeElement)) break;
    }
    await expect(page.getByLabel("Personal access token")).toBeFocused();
    await page.keyboard.type("glpat-good");
    await page.keyboard.press("Enter");
    await expect(page.getByRole("button", { name: "Integrate anyway" })).toBeVisible();
  });

  test("readable at 360 px and in a dark colour scheme", async ({ page }) => {
    await signUp(page);
    await page.setViewportSize({ width: 360, height: 740 });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.goto(`${STEP(12)}?base=${encodeURIComponent(FAKE_GITLAB + "/a/very/long/path/that/could/overflow")}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = bg.match(/\d+/g)!.map(Number);
    expect(r + g + b).toBeLessThan(120);
  });

  test("unknown steps answer 404 with a link to step 1", async ({ page }) => {
    for (const path of [STEP(0), STEP(14), "/integrations/gitlab/step/abc"]) {
      const response = await page.goto(path);
      expect(response?.status()).toBe(404);
      await expect(page.getByRole("link", { name: /step 1/ })).toHaveAttribute("href", STEP(1));
    }
    await page.goto("/integrations/gitlab/step");
    await expect(page).toHaveURL(new RegExp(`${STEP(1)}$`));
  });
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("step 11 derives the base URL with a plain form", async ({ page }) => {
    await page.goto(STEP(11));
    await page.getByLabel("Your GitLab profile URL").fill("https://git.acme.io:8443/gitlab/jdoe/");
    await page.getByRole("button", { name: "Find base URL" }).click();
    await expect(page.locator("#derived-base")).toHaveText("https://git.acme.io:8443/gitlab");
    await expect(page.getByRole("link", { name: "Continue" })).toHaveAttribute(
      "href",
      `${STEP(12)}?base=${encodeURIComponent("https://git.acme.io:8443/gitlab")}`,
    );
    await page.getByLabel("Your GitLab profile URL").fill("javascript:alert(1)");
    await page.getByRole("button", { name: "Find base URL" }).click();
    await expect(page).toHaveTitle(/^Error: Step 11 of 13/);
    await expect(page.locator(".error-summary")).toContainText("Only http:// and https:// addresses");
  });

  test("step 12 posts the form and the server renders the result", async ({ page }) => {
    await signUp(page);
    await openStep12(page);
    await page.getByLabel("Personal access token").fill("glpat-expired");
    await page.getByRole("button", { name: "Integrate GitLab" }).click();
    await expect(page).toHaveTitle(/^Error: Step 12 of 13/);
    await expect(page.locator(".error-summary")).toContainText("This token has expired");

    await page.getByLabel("Personal access token").fill("glpat-good");
    await page.getByRole("button", { name: "Integrate GitLab" }).click();
    await page.getByRole("button", { name: "Integrate anyway" }).click();
    await expect(page).toHaveTitle(/^Step 13 of 13/);
    await expect(page.locator("#connected-user")).toHaveText("@jdoe");
    expect(page.url()).not.toContain("glpat");
  });

  test("Continue links walk the public steps, then step 12 asks to log in", async ({ page }) => {
    await page.goto(STEP(1));
    for (let n = 1; n < 11; n++) {
      await page.getByRole("link", { name: "Continue" }).click();
      await expect(page).toHaveTitle(new RegExp(`^Step ${n + 1} of 13`));
    }
    await page.getByRole("link", { name: "Continue" }).click();
    await expect(page).toHaveTitle(/^Log in/);
    await expect(page).toHaveURL(/\/login\?next=%2Fintegrations%2Fgitlab%2Fstep%2F12/);
  });

  test("manage the saved connection: re-check, then disconnect", async ({ page }) => {
    await signUp(page);
    await openStep12(page);
    await page.getByLabel("Personal access token").fill("glpat-good");
    await page.getByRole("button", { name: "Integrate GitLab" }).click();
    await page.getByRole("button", { name: "Integrate anyway" }).click();
    await page.goto("/settings/integrations");
    await expect(page.locator("#gitlab-card")).toContainText("Connected");
    await page.getByRole("link", { name: "Manage" }).click();
    await page.getByRole("link", { name: FAKE_GITLAB }).click();
    await page.getByRole("button", { name: "Re-check now" }).click();
    await expect(page.locator("#status")).toContainText("Checked again");
    await page.getByRole("link", { name: "Disconnect this GitLab connection" }).click();
    await page.getByRole("button", { name: "Yes, disconnect" }).click();
    await expect(page.locator("main")).toContainText("The connection was disconnected");
    await expect(page.getByRole("link", { name: "Integrate GitLab" })).toBeVisible();
  });
});
