// Browser test of the UI against a real `dozor serve`: log in, see the status page, and see
// the live chart draw real data. Playwright (playwright-core) drives Debian's Chromium.
//
// Needs DOZOR_BIN (the dozor binary to run) and /usr/bin/chromium (or CHROMIUM_PATH).
// Screenshots go to target/ui-screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { launchBrowser, shots, startDozor, stopDozor } from "./dozor.mjs";

const password = "ui-test-password";
let server, browser, base, dataDir;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "dozor-ui-"));
  ({ server, base } = await startDozor(["serve", "--data-dir", dataDir], { DOZOR_ADMIN_PASSWORD: password }));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopDozor(server);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("a wrong password shows an error and stays on the login page", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/");
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", "not-the-password");
  await page.click("button[type=submit]");
  await page.getByRole("alert").waitFor();
  assert.match(await page.getByRole("alert").innerText(), /invalid username or password/);
  assert.equal(new URL(page.url()).pathname, "/login");
  await page.close();
});

test("logging in shows status and a live chart with real points", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(base + "/");
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/status");
  // The cards render with "…" before /api/v1/status answers: wait for the answer.
  await page.getByText("Audit records").waitFor();
  await page.getByRole("region", { name: "Status" }).getByText(/0\.1\.0/).waitFor();
  assert.match(await page.getByRole("region", { name: "Status" }).innerText(), /0\.1\.0/);

  // The sampler adds a point every 2 s: wait for a line, not a lone dot.
  const chart = page.getByTestId("live-chart");
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=live-chart]")?.dataset.points ?? 0) >= 3, null, { timeout: 20_000 });
  const painted = await chart.locator("canvas").evaluate((c) => {
    const { data } = c.getContext("2d").getImageData(0, 0, c.width, c.height);
    let n = 0;
    // Count pixels of the series' blue stroke (#2f7df6), allowing for anti-aliasing.
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && data[i + 2] > 180 && data[i] < 120) n++;
    }
    return n;
  });
  assert.ok(painted > 50, `the chart drew only ${painted} line pixels`);
  await page.screenshot({ path: join(shots, "status.png"), fullPage: true });

  // A reload keeps the session; logging out returns to the login page.
  await page.reload();
  await page.getByText("Audit records").waitFor();
  await page.getByRole("button", { name: "Log out" }).click();
  await page.locator("input[name=username]").waitFor();
  await page.close();
});

test("the UI's API calls are refused without a session", async () => {
  const res = await fetch(base + "/api/v1/status");
  assert.equal(res.status, 401);
  const html = await fetch(base + "/some/deep/ui/link");
  assert.equal(html.status, 200);
  assert.match(await html.text(), /<div id="app">/);
});

test("the initial page load stays under 300 KB of gzipped JavaScript", async () => {
  const index = await (await fetch(base + "/")).text();
  const scripts = [...index.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(scripts.length > 0, index);
  let total = 0;
  for (const src of scripts) {
    const js = Buffer.from(await (await fetch(base + src)).arrayBuffer());
    total += gzipSync(js, { level: 9 }).length;
  }
  console.log(`# bundle: ${(total / 1024).toFixed(1)} KB of gzipped JavaScript`);
  assert.ok(total < 300 * 1024, `${total} bytes`);
});
