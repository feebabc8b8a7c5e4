// Debian's Chromium, headless, driven by playwright-core, as the browser tests run it: the flags these machines need
// (no GPU, no network beyond loopback) and a fresh profile every run. `close()` ends the browser and removes the
// profile.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export async function launch({ width, height, timeout }) {
  const profile = mkdtempSync(join(tmpdir(), "synckit-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width, height },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 60_000,
  });
  context.setDefaultTimeout(timeout);
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}
