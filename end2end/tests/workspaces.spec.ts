import { expect, test, type Browser, type Page } from "@playwright/test";
import { STEP, tabTo, watchErrors } from "../helpers";
import { FAKE_GITLAB, FAKE_GITLAB_2 } from "../playwright.config";

const PASSWORD = "correct horse battery staple";
let accounts = 0;
const newEmail = (who: string) => `${who}-${process.pid}-${Date.now()}-${accounts++}@example.com`;

async function newPage(browser: Browser, javaScriptEnabled: boolean): Promise<Page> {
  const context = await browser.newContext({ javaScriptEnabled });
  return context.newPage();
}

/** On step 12 for `base` (confirmed in this browser already or now), connects with glpat-good. */
async function connectAt(page: Page, base: string) {
  await page.goto(`${STEP(12)}?base=${encodeURIComponent(base)}`);
  const confirm = page.getByRole("button", { name: "Yes, this is my GitLab" });
  if (await confirm.count()) await confirm.click();
  await expect(page.getByLabel("GitLab base URL")).toHaveValue(base);
  await page.getByLabel("Personal access token").fill("glpat-good");
  await page.getByRole("button", { name: "Integrate GitLab" }).click();
  // The fake GitLab speaks plain http: a warning, so Onramp asks once more.
  await page.getByRole("button", { name: "Integrate anyway" }).click();
  await expect(page).toHaveTitle(/^Step 13 of 13/);
  await expect(page.locator("#connected-base")).toHaveText(base);
}

for (const javaScriptEnabled of [true, false]) {
  test(`the lead sends step 8 to the colleague who connects in the lead's workspace (JavaScript ${
    javaScriptEnabled ? "on" : "off"
  })`, async ({ browser }) => {
    const lead = await newPage(browser, javaScriptEnabled);
    const leadErrors = watchErrors(lead);
    const leadEmail = newEmail("lead");
    const leadWorkspace = `${leadEmail.split("@")[0]}'s workspace`;
    await lead.goto("/signup");
    await lead.getByLabel("Email address").fill(leadEmail);
    await lead.getByLabel("Password").fill(PASSWORD);
    await lead.getByRole("button", { name: "Create account" }).click();
    await expect(lead.locator(".workspace-name")).toContainText(leadWorkspace);

    // Step 8 of the lead's instance: a link for the colleague, with an invitation.
    await lead.goto(`${STEP(8)}?base=${encodeURIComponent(FAKE_GITLAB)}`);
    await lead.getByRole("button", { name: "Make a link to step 8 for a colleague" }).click();
    const linkField = lead.getByLabel("Link to this step, with an invitation");
    await expect(linkField).toHaveValue(/\/invite\/[A-Za-z0-9_-]{43}$/);
    const link = await linkField.inputValue();

    // The colleague opens it in a fresh browser, signs up, and lands on step 8.
    const dev = await newPage(browser, javaScriptEnabled);
    const devErrors = watchErrors(dev);
    await dev.goto(link);
    await expect(dev.getByRole("heading", { level: 1 })).toHaveText(`Join ${leadWorkspace} on Onramp`);
    // Onramp has not verified the inviter's address, and says so to the one who may join.
    await expect(dev.locator("#invitation")).toContainText(`${leadEmail} (unverified address) invites you to the workspace`);
    await expect(dev.locator("#invitation")).toContainText("Onramp has not verified this address");
    await dev.getByRole("link", { name: "Create an account and join" }).click();
    await expect(dev.locator("#invitation")).toContainText("as admin");
    await dev.getByLabel("Email address").fill(newEmail("dev"));
    await dev.getByLabel("Password").fill(PASSWORD);
    await dev.getByRole("button", { name: "Create account" }).click();
    await expect(dev).toHaveTitle(/^Step 8 of 13/);
    await expect(dev).toHaveURL(new RegExp(`base=${encodeURIComponent(FAKE_GITLAB)}`));
    await expect(dev.locator("#joined")).toContainText(`Welcome to ${leadWorkspace}`);
    await expect(dev.locator(".workspace-name")).toContainText(leadWorkspace);
    // The instance came from a link: the colleague confirms it before anything links into it.
    await dev.getByRole("button", { name: "Yes, this is my GitLab" }).click();
    await expect(dev.getByRole("link", { name: /Open the token page/ })).toBeVisible();
    await dev.goto(`${STEP(12)}?base=${encodeURIComponent(FAKE_GITLAB)}`);
    await expect(dev.locator("#target-workspace")).toContainText(leadWorkspace);
    await connectAt(dev, FAKE_GITLAB);

    // The lead sees the connection and its health, and the audit log tells the story.
    await lead.goto("/integrations/gitlab");
    await expect(lead.locator(".connection")).toHaveCount(1);
    await expect(lead.locator(".connection")).toContainText("Working");
    await lead.getByRole("link", { name: FAKE_GITLAB }).click();
    await expect(lead.locator("#connected-user")).toHaveText("@jdoe");
    await lead.goto("/settings/audit");
    for (const what of ["invited a member", "joined", "saved a GitLab connection"]) {
      await expect(lead.locator("table.audit")).toContainText(what);
    }

    // A second connection, to another instance, beside the first.
    await lead.goto("/integrations/gitlab");
    await lead.getByRole("link", { name: "Connect another GitLab" }).click();
    await expect(lead).toHaveTitle(/^Step 5 of 13/);
    await connectAt(lead, FAKE_GITLAB_2);
    await lead.goto("/integrations/gitlab");
    await expect(lead.locator(".connection")).toHaveCount(2);
    expect(leadErrors).toEqual([]);
    expect(devErrors).toEqual([]);
  });
}

test("the workspace page: roles, invitations and switching, keyboard only", async ({ page }) => {
  const errors = watchErrors(page);
  const email = newEmail("owner");
  await page.goto("/signup");
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.locator(".workspace-name")).toBeVisible(); // signed in before moving on
  await page.goto("/settings/workspace");
  await expect(page.locator("#my-role")).toHaveText("Owner");
  // Everything below with the keyboard alone: Tab to a control, type, Enter or Space.
  // An invitation for viewers: the role chosen by typing its name into the focused list.
  const role = page.getByLabel("Role", { exact: true });
  await tabTo(page, role, "the invitation's role");
  await page.keyboard.type("Viewer");
  await expect(role).toHaveValue("viewer");
  await tabTo(page, page.getByRole("button", { name: "Create invitation link" }), "Create invitation link");
  await page.keyboard.press("Enter");
  await expect(page.getByLabel("Invitation link")).toHaveValue(/\/invite\//);
  await expect(page.locator(".invitations")).toContainText("Viewer");
  // A second workspace, then back to the first.
  await tabTo(page, page.getByLabel("New workspace"), "the new workspace's name");
  await page.keyboard.type("Acme platform");
  await tabTo(page, page.getByRole("button", { name: "Create workspace" }), "Create workspace");
  await page.keyboard.press("Enter");
  await expect(page.locator("#status")).toContainText("The workspace was created");
  await expect(page.locator(".workspace-name")).toContainText("Acme platform");
  const own = `${email.split("@")[0]}'s workspace`;
  await tabTo(page, page.getByRole("button", { name: `Switch to ${own}` }), `Switch to ${own}`);
  await page.keyboard.press("Space");
  await expect(page.locator(".workspace-name")).toContainText(own);
  expect(errors).toEqual([]);
});
