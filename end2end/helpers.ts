import { expect, type Page } from "@playwright/test";

/** The URL of step `n` of the GitLab guide. */
export const STEP = (n: number) => `/integrations/gitlab/step/${n}`;

/** Collects every console error and uncaught exception of `page`; tests expect it empty. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  return errors;
}

export const PASSWORD = "correct horse battery staple";

let accounts = 0;
/** Signs up a new account (and so logs in) as a reader would; returns its e-mail address. */
export async function signUpNew(page: Page, prefix: string): Promise<string> {
  const email = `${prefix}-${process.pid}-${Date.now()}-${accounts++}@example.com`;
  await page.goto("/signup");
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.locator(".workspace-name")).toBeVisible();
  return email;
}

/**
 * Opens step 12 for `base` as a shared link would and confirms the instance ("Yes, this is my
 * GitLab"). With JavaScript the island swaps the confirmed page in: this waits for it, so that
 * nothing is typed into the page being replaced.
 */
export async function confirmedStep12(page: Page, base: string) {
  await page.goto(`${STEP(12)}?base=${encodeURIComponent(base)}`);
  await page.getByRole("button", { name: "Yes, this is my GitLab" }).click();
  await expect(page.getByLabel("GitLab base URL")).toHaveValue(base);
}

/** Presses Tab until `target` has focus, checking that every element on the way shows it. */
export async function tabTo(page: Page, target: ReturnType<Page["locator"]>, what: string) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    const focus = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el || el === document.body) return { visible: true, tag: "body" };
      const style = getComputedStyle(el);
      const visible =
        (style.outlineStyle !== "none" && style.outlineWidth !== "0px") || style.boxShadow !== "none";
      return { visible, tag: `${el.tagName.toLowerCase()} ${el.textContent?.trim().slice(0, 40) ?? ""}` };
    });
    expect(focus.visible, `focus is visible on ${focus.tag} (on the way to ${what})`).toBe(true);
    if (await target.evaluate((el) => el === document.activeElement)) return;
  }
  throw new Error(`${what} was not reached with Tab`);
}
