// The person at the browser, for `synckit login --browser`: the test sets $BROWSER to `node driver.mjs`, so the
// CLI starts this with the authorize URL as its last argument. It opens the URL in Debian's Chromium (headless,
// driven by playwright-core), derives the shared login-key vectors with the page's own worker, takes screenshots at
// desktop and phone widths, then signs in with the keyboard alone, as a person would, and waits for the CLI's
// callback page. Everything it saw goes to $DRIVER_OUT/driver.json for the test to check: every request the
// browser sent with its body, console errors, the derived vectors, whether the progress indicator showed, and the
// text of the page the browser ended on. It stops by itself: every wait is bounded.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch } from "./chromium.mjs";

const url = process.argv[process.argv.length - 1];
const { SIGNIN_EMAIL: email, SIGNIN_PASSWORD: password, DRIVER_OUT: out, LOGIN_VECTORS: vectorsPath } = process.env;
const report = { url, requests: [], consoleErrors: [], derived: [], progressShown: false, finalUrl: "", finalText: "" };

const { context, close } = await launch({ width: 1280, height: 800, timeout: 60_000 });

try {
  context.on("request", (request) => {
    report.requests.push({ method: request.method(), url: request.url(), body: request.postData() ?? "" });
  });
  const watch = (page) => {
    page.on("console", (message) => {
      if (message.type() === "error") report.consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => report.consoleErrors.push(String(error)));
  };

  // A phone's screen first, in a page of its own (loading the page again spends nothing).
  const phone = await context.newPage();
  watch(phone);
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(url);
  await phone.screenshot({ path: join(out, "signin-phone.png"), fullPage: true });
  await phone.close();

  const page = context.pages()[0] ?? (await context.newPage());
  watch(page);
  await page.goto(url);
  await page.screenshot({ path: join(out, "signin-desktop.png") });

  // The login-key vectors, derived by the page's worker in this browser.
  const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));
  report.derived = await page.evaluate(async (vectors) => {
    const derive = (password, salt) =>
      new Promise((resolve, reject) => {
        const worker = new Worker("/oauth/assets/worker.js");
        worker.onmessage = (event) => {
          worker.terminate();
          if (event.data.error) reject(new Error(event.data.error));
          else resolve(event.data.key);
        };
        worker.onerror = (event) => reject(new Error(event.message));
        worker.postMessage({ password, salt });
      });
    const results = [];
    for (const vector of vectors) {
      const salt = Uint8Array.from(atob(vector.salt), (c) => c.charCodeAt(0));
      const key = await derive(vector.password, salt);
      results.push(btoa(String.fromCharCode(...key)));
    }
    return results;
  }, vectors);

  // Sign in with the keyboard: the email field has focus, Tab moves to the password, Enter submits.
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  const shown = page.locator("#progress").waitFor({ state: "visible", timeout: 10_000 });
  await page.keyboard.press("Enter");
  report.progressShown = await shown.then(
    () => true,
    () => false,
  );
  await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/, { timeout: 60_000 });
  await page.waitForLoadState("load");
  report.finalUrl = page.url();
  report.finalText = await page.locator("body").innerText();
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error);
} finally {
  writeFileSync(join(out, "driver.json"), JSON.stringify(report, null, 2));
  await close();
}
