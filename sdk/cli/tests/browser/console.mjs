// The app developer at the console (`GET /console`), for the console test (console.rs): Debian's Chromium, headless,
// driven by playwright-core. It signs up on the page, creates an app and reads its API key off the page, edits the
// redirect URIs (a refused list first, then a session that ends before the save), rotates the key, gets live quotes
// while typing, sets a plan and schedules a lower one; then it tells the test the keys (a line of JSON on stdout) and
// waits for a line on stdin, while the test syncs data into the app and the operator sets a small trial plan; then
// it reads the usage charts, deletes a second app and signs out. What it saw goes to $DRIVER_OUT/console.json: the
// texts a person would read at each step, every request the browser sent with its body, console errors and what the
// page kept in storage. Every wait is bounded.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { launch } from "./chromium.mjs";

const { CONSOLE_URL: url, CONSOLE_EMAIL: email, CONSOLE_PASSWORD: password, DRIVER_OUT: out } = process.env;
const report = { requests: [], consoleErrors: [], steps: {} };
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const { context, close } = await launch({ width: 1280, height: 900, timeout: 30_000 });

/** The visible text of `selector`, spaces collapsed. */
async function text(page, selector) {
  const raw = await page.locator(selector).innerText();
  return raw.replace(/\s+/g, " ").trim();
}

/** Waits until `selector`'s text matches `pattern`, and answers it. */
async function textMatching(page, selector, pattern) {
  await page.waitForFunction(
    ([s, p]) => new RegExp(p).test((document.querySelector(s)?.innerText || "").replace(/\s+/g, " ")),
    [selector, pattern.source],
    { timeout: 30_000 },
  );
  return text(page, selector);
}

/** The page's storage: what it keeps in the tab's session storage, and whether it put anything in local storage. */
function storage(page) {
  return page.evaluate(() => ({
    local: Object.keys(localStorage),
    session: Object.keys(sessionStorage),
  }));
}

/** Types into the storage field as a person would, after clearing it, and answers the quote once it shows. */
async function quoteFor(page, storageGb, expected) {
  await page.locator("#plan-storage").fill("");
  await page.locator("#plan-storage").pressSequentially(storageGb, { delay: 30 });
  return textMatching(page, "#quote", expected);
}

try {
  context.on("request", (request) => {
    report.requests.push({ method: request.method(), url: request.url(), body: request.postData() ?? "" });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    // The browser logs each refusal the test provokes (a 400 for a bad value, the 401 of an ended session) as a
    // failed load: those are the page's expected answers, not its errors.
    const refusal = /^Failed to load resource: the server responded with a status of 4\d\d/;
    if (message.type() === "error" && !refusal.test(message.text())) report.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => report.consoleErrors.push(String(error)));
  const response = await page.goto(`${url}/console`);
  report.steps.policy = response.headers()["content-security-policy"];
  await page.locator("#signin-view").waitFor({ state: "visible" });
  await page.screenshot({ path: join(out, "console-signin.png") });

  // Sign up with the keyboard: the email field has focus.
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.locator("#email").focus();
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  const progress = page.locator("#signin-progress").waitFor({ state: "visible", timeout: 10_000 });
  await page.keyboard.press("Enter");
  report.steps.progressShown = await progress.then(
    () => true,
    () => false,
  );
  await page.locator("#console-view").waitFor({ state: "visible", timeout: 60_000 });
  report.steps.signedInAs = await text(page, "#session-email");
  report.steps.firstView = await text(page, "#console-view");

  // A new account has no apps: the page offers to create one. A name left out is refused on the page.
  await page.getByRole("button", { name: "Create app", exact: true }).click();
  report.steps.createWithoutName = await text(page, "#create-error");
  await page.getByLabel("Name", { exact: true }).fill("Notes");
  await page.locator("#create-uris").fill("http://127.0.0.1/callback");
  await page.getByRole("button", { name: "Create app", exact: true }).click();
  await page.locator("#key-panel").waitFor({ state: "visible" });
  report.steps.createdKeyPanel = await text(page, "#key-panel");
  report.steps.createdKey = await text(page, "#key-value");
  report.steps.appId = await text(page, "#app-id");
  await page.screenshot({ path: join(out, "console-key.png") });
  await page.getByRole("button", { name: "I have saved the key" }).click();
  report.steps.afterSavedKey = await page.locator("body").innerText();

  // Back after a reload: still signed in (the tab's session), the app listed, its key nowhere.
  await page.reload();
  await page.locator("#app-panel").waitFor({ state: "visible" });
  report.steps.afterReload = await page.locator("body").innerText();
  report.steps.appsListed = await page.locator("#app-list button").allInnerTexts();

  // Redirect URIs: a refused list is kept as typed, with the server's reason; then a good one is saved.
  const refused = "http://127.0.0.1/callback\nhttp://example.com/callback";
  await page.locator("#uris").fill(refused);
  await page.getByRole("button", { name: "Save redirect URIs" }).click();
  report.steps.urisRefused = await textMatching(page, "#uris-error", /example\.com/);
  report.steps.urisKept = await page.locator("#uris").inputValue();
  const good = "http://127.0.0.1/callback\n\ncom.example.notes:/oauth\n";
  await page.locator("#uris").fill(good);
  // The session ends before the save reaches the server (the server refuses the token, as it does after 15
  // minutes): the page asks to sign in again, and keeps what was typed.
  const expired = { error: { code: "invalid_token", message: "the token has expired" } };
  await page.route("**/redirect-uris", (route) => route.fulfill({ status: 401, json: expired }), { times: 1 });
  await page.getByRole("button", { name: "Save redirect URIs" }).click();
  await page.locator("#signin-view").waitFor({ state: "visible" });
  report.steps.sessionEnded = await text(page, "#signin-error");
  await page.locator("#password").fill(password);
  await page.keyboard.press("Enter");
  await page.locator("#app-panel").waitFor({ state: "visible", timeout: 60_000 });
  report.steps.urisAfterSignIn = await page.locator("#uris").inputValue();
  await page.getByRole("button", { name: "Save redirect URIs" }).click();
  report.steps.urisSaved = await textMatching(page, "#uris-status", /Saved/);
  report.steps.urisShown = await page.locator("#uris").inputValue();

  // Rotating the key asks first, then shows the new key once.
  await page.getByRole("button", { name: "Rotate the API key…" }).click();
  report.steps.rotateAsks = await text(page, "#rotate-confirm");
  await page.getByRole("button", { name: "Rotate now" }).click();
  report.steps.rotatedKey = await textMatching(page, "#key-value", /^sk_/);
  await page.getByRole("button", { name: "I have saved the key" }).click();

  // Live quotes as the storage is typed, in Simple mode (5x) and in Builder mode; a bad value is explained and kept.
  report.steps.quote1 = await quoteFor(page, "1", /\$0\.30 a month/);
  report.steps.quote50 = await quoteFor(page, "50", /\$15\.00 a month/);
  report.steps.quoteBad = await quoteFor(page, "1,5", /decimal number/);
  report.steps.quoteBadKept = await page.locator("#plan-storage").inputValue();
  report.steps.burstHiddenInSimple = await page.locator("#burst-row").isHidden();
  await page.getByLabel("Builder: choose the burst").check();
  await page.locator("#plan-burst").fill("20");
  report.steps.quoteBuilder = await quoteFor(page, "10", /\$7\.50 a month/);
  await page.locator("#plan-burst").fill("21");
  report.steps.quoteBurstTooHigh = await textMatching(page, "#quote", /1 to 20/);
  await page.getByLabel("Simple: transfer up to").check();

  // The first plan takes effect at once; a lower one waits for the next month.
  await quoteFor(page, "1", /\$0\.30 a month/);
  await page.getByRole("button", { name: "Set plan" }).click();
  report.steps.planSet = await textMatching(page, "#notice", /in force/);
  report.steps.planCurrent = await text(page, "#plan-current");
  report.steps.quoteLower = await quoteFor(page, "0.5", /\$0\.15 a month/);
  await page.getByRole("button", { name: "Set plan" }).click();
  report.steps.planScheduled = await textMatching(page, "#notice", /scheduled/);
  report.steps.planNext = await text(page, "#plan-next");
  report.steps.planCurrentAfter = await text(page, "#plan-current");

  // The test syncs data into the app with the new key, then says when.
  const keys = { app_id: report.steps.appId, created: report.steps.createdKey, rotated: report.steps.rotatedKey };
  process.stdout.write(`${JSON.stringify(keys)}\n`);
  const late = new Promise((_, no) => setTimeout(() => no(new Error("the test said nothing for 90 s")), 90_000));
  const next = await Promise.race([stdin.next(), late]);
  if (next.done) throw new Error("the test closed stdin");

  // The operator has changed the plan meanwhile: a reload shows the page afresh (still signed in).
  await page.reload();
  await page.locator("#app-panel").waitFor({ state: "visible" });
  await textMatching(page, "#users tbody", /[0-9a-f-]{36}/);
  report.steps.planAfterOperator = await textMatching(page, "#plan-current", /In force/);
  report.steps.usageHeading = await text(page, "#usage-heading");
  report.steps.today = await page.evaluate(() => new Date().getUTCDate());
  report.steps.charts = await page.evaluate(() =>
    ["storage-chart", "transfer-chart"].map((id) => {
      const figure = document.getElementById(id);
      const line = figure.querySelector("polyline.line");
      return {
        title: figure.querySelector("figcaption").textContent,
        summary: figure.querySelector(".summary").textContent,
        label: figure.querySelector("svg").getAttribute("aria-label"),
        points: line ? line.getAttribute("points").trim().split(/\s+/).length : 0,
        limit: figure.querySelector("text.limit-label")?.textContent ?? null,
      };
    }),
  );
  report.steps.users = await page.evaluate(() =>
    [...document.querySelectorAll("#users tbody tr")].map((row) => [...row.cells].map((cell) => cell.innerText.trim())),
  );
  // The page as a developer finds it: the quote for the plan in force shown too.
  await textMatching(page, "#quote", /a month/);
  await page.screenshot({ path: join(out, "console-desktop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(out, "console-phone.png") });
  await page.setViewportSize({ width: 1280, height: 900 });

  // A second app, deleted again: the name must be typed to delete it.
  await page.getByRole("button", { name: "New app" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Scratch");
  await page.getByRole("button", { name: "Create app", exact: true }).click();
  await page.locator("#key-panel").waitFor({ state: "visible" });
  await page.getByRole("button", { name: "I have saved the key" }).click();
  report.steps.appsBeforeDelete = await page.locator("#app-list button").allInnerTexts();
  await page.getByRole("button", { name: "Delete the app…" }).click();
  await page.locator("#delete-name").fill("Scratc");
  await page.getByRole("button", { name: "Delete for good" }).click();
  report.steps.deleteMistyped = await text(page, "#delete-error");
  await page.locator("#delete-name").fill("Scratch");
  await page.getByRole("button", { name: "Delete for good" }).click();
  report.steps.deleted = await textMatching(page, "#notice", /deleted/);
  report.steps.appsAfterDelete = await page.locator("#app-list button").allInnerTexts();

  report.steps.storageSignedIn = await storage(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#signin-view").waitFor({ state: "visible" });
  report.steps.storageSignedOut = await storage(page);

  // Signing in again (the page derives the key from the salt the server keeps) shows the app again.
  await page.locator("#email").fill(email);
  await page.locator("#password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.locator("#app-panel").waitFor({ state: "visible", timeout: 60_000 });
  report.steps.appsAfterSignIn = await page.locator("#app-list button").allInnerTexts();
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error);
  // What the page said when it went wrong, for whoever reads the failure.
  const page = context.pages()[0];
  if (page) {
    report.pageText = await page.locator("body").innerText().catch(() => "");
    await page.screenshot({ path: join(out, "failure.png"), fullPage: true }).catch(() => {});
  }
} finally {
  writeFileSync(join(out, "console.json"), JSON.stringify(report, null, 2));
  await close();
  process.exit(0);
}
