import type { Page } from "@playwright/test";

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
