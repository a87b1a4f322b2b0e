// Browser tests of the pages against a real `dozor demo` (live demo data, a rule that
// always fires): explore metrics and see a chart with points and a link that restores it;
// explore logs, expand a line, and see a new line arrive in the live tail; acknowledge an
// alert and see it change; verify and search the audit chain; a viewer without the audit
// scope neither sees nor reaches the audit page; the demo marketplace's sales and fraud
// findings, one investigated; service levels and endpoint performance from imported
// series. Screenshots go to target/ui-screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBrowser, shots, startDozor, stopDozor } from "./dozor.mjs";

const ADMIN = ["admin", "dozor-demo"];
const VIEWER = ["vera", "viewer-password-2026"];
let server, browser, base, dir, adminToken;

async function api(method, path, body, token = adminToken) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "dozor-ui-pages-"));
  writeFileSync(
    join(dir, "rules.yml"),
    "groups:\n  - name: ui\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1) > 0\n        labels: {severity: warning}\n        annotations: {summary: 'fires for the UI test'}\n",
  );
  writeFileSync(
    join(dir, "dozor.yml"),
    "rules:\n  evaluation_interval: 1s\n  files: [rules.yml]\nslos:\n  - {name: api, objective: 99.5, errors: 'dozor_http_requests_total{code=~\"5..\"}', total: dozor_http_requests_total}\n",
  );
  ({ server, base } = await startDozor(["demo", "--config", join(dir, "dozor.yml"), "--data-dir", join(dir, "data")], {}));
  const login = await fetch(base + "/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: ADMIN[0], password: ADMIN[1] }),
  });
  adminToken = (await login.json()).data.access_token;
  const made = await api("POST", "/api/v1/users", { name: VIEWER[0], password: VIEWER[1], role: "viewer" });
  assert.ok(made.status < 300, JSON.stringify(made.body));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopDozor(server);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function loggedIn([user, password]) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(base + "/");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/status");
  return page;
}

test("explore metrics: a PromQL query draws points, and its link brings it back", async () => {
  // The host collector's first sample lands within a second or two of the start.
  for (let i = 0; i < 100; i++) {
    const r = await api("GET", "/api/v1/query?query=node_load1");
    if (r.body?.data?.result?.length) break;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  const page = await loggedIn(ADMIN);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Metrics" }).click();
  await page.waitForURL(/\/explore/);
  // Completion: metric names, then label names inside braces.
  const field = page.getByLabel("PromQL expression");
  await field.fill("");
  await field.pressSequentially("node_lo");
  await page.getByRole("list", { name: "Metric names" }).getByRole("button", { name: "node_load1", exact: true }).click();
  assert.equal(await field.inputValue(), "node_load1");
  await field.pressSequentially("{inst");
  await page.getByRole("list", { name: "Label names" }).getByRole("button", { name: "instance", exact: true }).click();
  assert.equal(await field.inputValue(), "node_load1{instance");
  await page.getByLabel("PromQL expression").fill("node_load1");
  await page.getByLabel("Time range").selectOption("15m");
  await page.getByRole("button", { name: "Run" }).click();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=query-chart]")?.dataset.points ?? 0) > 0, null, { timeout: 20_000 });
  assert.ok((await page.getByRole("table", { name: "Series" }).locator("tbody tr").count()) > 0);
  const shared = page.url();
  assert.match(shared, /query=node_load1/);
  assert.match(shared, /range=15m/);
  await page.screenshot({ path: join(shots, "metrics.png"), fullPage: true });
  // The link alone restores the view.
  const again = await browser.newPage();
  await again.goto(base + "/");
  await again.fill("input[name=username]", ADMIN[0]);
  await again.fill("input[name=password]", ADMIN[1]);
  await again.click("button[type=submit]");
  await again.waitForURL(base + "/status");
  await again.goto(shared);
  await again.waitForFunction(() => Number(document.querySelector("[data-testid=query-chart]")?.dataset.points ?? 0) > 0, null, { timeout: 20_000 });
  assert.equal(await again.getByLabel("PromQL expression").inputValue(), "node_load1");
  // A bad query says what is wrong.
  await page.getByLabel("PromQL expression").fill("sum(");
  await page.getByRole("button", { name: "Run" }).click();
  await page.getByRole("alert").waitFor();
  await again.close();
  await page.close();
});

test("explore logs: lines with fields, and the live tail shows a new line", async () => {
  const now = Math.floor(Date.now() / 1000);
  const sent = await api("POST", "/api/v1/logs/ingest", JSON.stringify({ _time: now - 5, service: "uitest", level: "error", _msg: "checkout failed for order 7" }));
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const page = await loggedIn(ADMIN);
  await page.goto(base + "/logs?" + new URLSearchParams({ query: '{service="uitest"}', range: "15m" }));
  const lines = page.getByTestId("log-lines");
  await lines.getByText("checkout failed for order 7").waitFor({ timeout: 20_000 });
  await lines.getByRole("button", { name: /checkout failed/ }).click();
  await page.locator(".fields").getByText("uitest").waitFor();
  await page.getByRole("button", { name: "Live tail" }).click();
  await page.getByRole("button", { name: "● Live" }).waitFor();
  // Give the socket a moment to open, then send a line it must show.
  await new Promise((r) => setTimeout(r, 1500));
  const fresh = await api("POST", "/api/v1/logs/ingest", JSON.stringify({ service: "uitest", level: "info", _msg: "tail sees this line" }));
  assert.equal(fresh.status, 200);
  await lines.getByText("tail sees this line").waitFor({ timeout: 20_000 });
  await page.screenshot({ path: join(shots, "logs.png"), fullPage: true });
  await page.close();
});

test("alerts: acknowledging a firing alert shows who did it", async () => {
  const page = await loggedIn(ADMIN);
  await page.getByRole("link", { name: "Alerts" }).click();
  const row = page.getByTestId("active-alerts").locator("tr", { hasText: "AlwaysOn" });
  await row.getByText("firing").waitFor({ timeout: 30_000 });
  // The list comes over the live WebSocket.
  await page.getByTestId("live").waitFor({ timeout: 10_000 });
  await row.getByLabel("Comment on AlwaysOn").fill("looking into it");
  await row.getByRole("button", { name: "Acknowledge" }).click();
  await row.locator(".acked").getByText("admin: looking into it").waitFor({ timeout: 10_000 });
  await page.screenshot({ path: join(shots, "alerts.png"), fullPage: true });
  await page.close();
});

test("audit: the chain verifies and is searchable", async () => {
  const page = await loggedIn(ADMIN);
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByRole("button", { name: "Verify the chain" }).click();
  await page.getByTestId("verify-result").getByText(/Intact: records 1 to \d+/).waitFor();
  await page.getByLabel("Actor").fill(ADMIN[0]);
  await page.getByLabel("Action (auth.*)").fill("auth.*");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByTestId("audit-records").getByText("auth.login").first().waitFor();
  // The unfiltered list shown before also holds auth.login: wait for the search's answer
  // (a filter that does not work times out here).
  await page
    .waitForFunction(() => {
      const cells = [...document.querySelectorAll('[data-testid="audit-records"] tbody td:nth-child(4)')];
      return cells.length > 0 && cells.every((c) => c.innerText.startsWith("auth."));
    }, null, { timeout: 10_000 })
    .catch(() => {});
  const actions = await page.getByTestId("audit-records").locator("tbody td:nth-child(4)").allInnerTexts();
  assert.ok(actions.length > 0 && actions.every((a) => a.startsWith("auth.")), actions.join(","));
  await page.screenshot({ path: join(shots, "audit.png"), fullPage: true });
  await page.close();
});

test("a viewer neither sees nor reaches the audit page, and cannot acknowledge", async () => {
  const page = await loggedIn(VIEWER);
  const nav = page.getByRole("navigation", { name: "Pages" });
  await nav.getByRole("link", { name: "Metrics" }).waitFor();
  assert.equal(await nav.getByRole("link", { name: "Audit" }).count(), 0);
  await page.goto(base + "/audit");
  await page.getByRole("alert").getByText(/may not use this page/).waitFor();
  const refused = await page.evaluate(async () => {
    const s = JSON.parse(sessionStorage.getItem("dozor.session"));
    const r = await fetch("/api/v1/audit/verify", { headers: { authorization: `Bearer ${s.access_token}` } });
    return r.status;
  });
  assert.equal(refused, 403);
  await page.goto(base + "/alerts");
  await page.getByTestId("active-alerts").locator("tr", { hasText: "AlwaysOn" }).waitFor({ timeout: 30_000 });
  assert.equal(await page.getByRole("button", { name: "Acknowledge" }).count(), 0);
  await page.close();
});

test("every page is reachable by keyboard alone", async () => {
  const page = await loggedIn(ADMIN);
  const reached = [];
  for (let i = 0; i < 16; i++) {
    await page.keyboard.press("Tab");
    reached.push(await page.evaluate(() => document.activeElement?.textContent?.trim()));
  }
  for (const name of ["Status", "Metrics", "Logs", "Dashboards", "Alerts", "Incidents", "Cash registers", "Service levels", "Ticketing", "Audit", "Settings", "Log out"]) {
    assert.ok(reached.includes(name), `Tab never reached ${name}: ${reached.join(" | ")}`);
  }
  await page.close();
});

/** A Grafana export with twelve panels of the kinds Dozor draws (and one it does not). */
function grafanaDashboard() {
  const ts = (title, expr) => ({ type: "timeseries", title, targets: [{ expr }] });
  return {
    title: "Host (from Grafana)",
    time: { from: "now-24h", to: "now" },
    refresh: "30s",
    templating: { list: [{ type: "query", name: "job", query: "label_values(node_load1, job)" }] },
    panels: [
      ts("Load", 'node_load1{job="$job"}'),
      ts("Bench, every host", "bench_load"),
      ts("Bench sum", "sum(bench_load)"),
      ts("Bench max", "max(bench_load)"),
      ts("Bench rate", "rate(bench_load[5m])"),
      ts("Bench avg", "avg_over_time(bench_load[10m])"),
      { type: "stat", title: "Series", targets: [{ expr: "count(node_load1)" }] },
      { type: "stat", title: "Load now", targets: [{ expr: "max(node_load1)" }] },
      { type: "gauge", title: "Load gauge", targets: [{ expr: "max(node_load1)" }] },
      { type: "table", title: "Load table", targets: [{ expr: "node_load1" }] },
      { type: "logs", title: "UI test lines", targets: [{ expr: '{service="uitest"}' }] },
      { type: "alertlist", title: "Alerts" },
      { type: "piechart", title: "not drawn by Dozor", targets: [{ expr: "up" }] },
    ],
  };
}

test("dashboards: import Grafana JSON, render twelve panels over 24 h, share, edit, duplicate", async () => {
  // A day of samples (four hosts, one a minute), so the 24 h panels draw real data.
  const now = Date.now();
  const lines = [];
  for (let h = 0; h < 4; h++) {
    for (let i = 0; i < 1440; i++) lines.push(`bench_load{host="h${h}"} ${(1 + Math.sin(i / 50 + h)).toFixed(3)} ${now - (1440 - i) * 60_000}`);
  }
  const imported = await fetch(base + "/api/v1/import/prometheus", {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "text/plain" },
    body: lines.join("\n") + "\n",
  });
  assert.ok(imported.ok, `backfill: ${imported.status}`);
  const page = await loggedIn(ADMIN);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Dashboards" }).click();
  await page.getByRole("form", { name: "Import a dashboard" }).locator("textarea").fill(JSON.stringify(grafanaDashboard()));
  await page.getByRole("button", { name: "Import" }).click();
  await page.waitForURL(/\/dashboards\/[0-9a-f]+$/);
  const url = page.url();
  const panels = page.getByTestId("panels").locator(".panel");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=panels] .panel[data-state=done]").length === 12, null, { timeout: 20_000 });
  assert.equal(await panels.count(), 12, "the pie chart is left out");
  // A cold load of the whole dashboard, timed: the browser benchmark of the note.
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=panels] .panel[data-state=done]").length === 12, null, { timeout: 20_000 });
  const ms = Date.now() - t0;
  const points = await page.evaluate(() => [...document.querySelectorAll("[data-testid=panels] .chart")].reduce((n, c) => n + Number(c.dataset.points ?? 0), 0));
  assert.ok(points > 2000, `only ${points} points drawn`);
  console.log(`# bench: a 12-panel dashboard over 24 h (${points} points) rendered in ${ms} ms (navigation to last panel)`);
  assert.equal(await page.getByLabel("Time range").inputValue(), "24h");
  assert.equal(await page.getByLabel("Variable job").inputValue(), "dozor");
  await page.locator(".panel[data-type=alert-list]").getByText("AlwaysOn").waitFor();
  await page.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });

  // Share it; a viewer then sees it, without the owner's buttons.
  await page.getByRole("button", { name: "Share" }).click();
  await page.getByRole("button", { name: "Unshare" }).waitFor();
  const viewer = await loggedIn(VIEWER);
  await viewer.goto(base + "/dashboards");
  await viewer.getByRole("link", { name: "Host (from Grafana)" }).click();
  await viewer.waitForFunction(() => document.querySelectorAll("[data-testid=panels] .panel[data-state=done]").length === 12, null, { timeout: 20_000 });
  assert.equal(await viewer.getByRole("button", { name: "Edit JSON" }).count(), 0);
  assert.equal(await viewer.getByRole("button", { name: "Delete" }).count(), 0);
  await viewer.close();

  // Edit its JSON: a new name is saved; a bad query is refused with the field named.
  await page.getByRole("button", { name: "Edit JSON" }).click();
  const editor = page.getByLabel("Dashboard JSON");
  const json = JSON.parse(await editor.inputValue());
  await editor.fill(JSON.stringify({ ...json, name: "Host" }));
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: "Host", exact: true }).waitFor();
  await page.getByRole("button", { name: "Edit JSON" }).click();
  json.widgets[0].query = "rate(";
  await page.getByLabel("Dashboard JSON").fill(JSON.stringify(json));
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").getByText(/widgets\[0\]\.query/).waitFor();

  // Add a panel with the builder's form: it is saved and drawn.
  await page.getByRole("button", { name: "Cancel" }).click();
  const add = page.getByRole("form", { name: "Add a panel" });
  await add.locator("select[name=panel-type]").selectOption("stat");
  await add.locator("input[name=panel-title]").fill("Hosts reporting");
  await add.locator("input[name=panel-query]").fill("count(bench_load)");
  await add.getByRole("button", { name: "Add panel" }).click();
  const added = page.locator(".panel", { has: page.getByRole("heading", { name: "Hosts reporting" }) });
  await added.locator(".big").getByText("4.0").waitFor();

  // Duplicate: a private copy, the caller's.
  await page.getByRole("button", { name: "Duplicate" }).click();
  await page.getByRole("heading", { name: "Host (copy)" }).waitFor();
  assert.notEqual(page.url(), url);
  await page.close();
});

test("incidents: a note, acknowledge and resolve appear on the timeline", async () => {
  const made = await api("POST", "/api/v1/incidents", { title: "Checkout is down", description: "5xx on /pay", severity: "critical", service_name: "shop" });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const page = await loggedIn(ADMIN);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Incidents" }).click();
  await page.getByRole("link", { name: "Checkout is down" }).click();
  await page.getByTestId("incident-status").getByText("open").waitFor();
  await page.getByRole("textbox", { name: "Note" }).fill("rolled back v2.3");
  await page.getByRole("button", { name: "Add note" }).click();
  await page.getByTestId("timeline").getByText(/rolled back v2\.3/).waitFor();
  await page.getByRole("button", { name: "Acknowledge" }).click();
  await page.getByTestId("incident-status").getByText("acknowledged").waitFor();
  await page.getByRole("button", { name: "Resolve" }).click();
  await page.getByTestId("incident-status").getByText("resolved").waitFor();
  await page.getByRole("button", { name: "Reopen" }).waitFor();
  await page.screenshot({ path: join(shots, "incident.png"), fullPage: true });
  await page.close();
});

test("settings: an admin adds a user and makes and revokes a token; others cannot", async () => {
  const page = await loggedIn(ADMIN);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Settings" }).click();
  await page.fill("input[name=new-user]", "sam");
  await page.fill("input[name=new-password]", "quiet-river-2026-x");
  await page.selectOption("select[name=new-role]", "developer");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.getByRole("table", { name: "Users" }).getByRole("row", { name: /sam developer/ }).waitFor();
  // A weak password is refused with the reason.
  await page.fill("input[name=new-user]", "tim");
  await page.fill("input[name=new-password]", "short");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.getByRole("alert").getByText(/password/).waitFor();
  await page.fill("input[name=token-name]", "grafana");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.getByTestId("token-secret").innerText();
  assert.match(secret, /^dzr_/);
  const row = page.getByRole("table", { name: "API tokens" }).getByRole("row", { name: /grafana/ });
  await row.getByText("active").waitFor();
  await row.getByRole("button", { name: "Revoke grafana" }).click();
  await row.getByText("revoked").waitFor();
  const res = await fetch(base + "/api/v1/status", { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(res.status, 401, "a revoked token is refused");
  await page.screenshot({ path: join(shots, "settings.png"), fullPage: true });
  await page.close();

  const viewer = await loggedIn(VIEWER);
  assert.equal(await viewer.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Settings" }).count(), 0);
  await viewer.goto(base + "/settings");
  await viewer.getByRole("alert").getByText(/may not use this page/).waitFor();
  await viewer.close();
});

test("the shipped Host, Dozor and cash-register dashboards are added and draw", async () => {
  const page = await loggedIn(ADMIN);
  const added = {};
  for (const [name, panels] of [["Host", 8], ["Dozor", 8], ["Cash registers (54-FZ)", 12]]) {
    await page.goto(base + "/dashboards");
    await page.getByRole("button", { name: `Add ${name}` }).click();
    await page.waitForURL(/\/dashboards\/[0-9a-f]+$/);
    added[name] = page.url();
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid=panels] .panel[data-state=done]").length === n, panels, { timeout: 20_000 });
    assert.equal(await page.locator(".panel[data-state=error]").count(), 0, `${name}: a panel failed`);
    await page.screenshot({ path: join(shots, `dashboard-${name.split(" ")[0].toLowerCase()}.png`), fullPage: true });
  }
  // The KKT dashboard's alert list keeps to the pack's alerts: the demo's AlwaysOn fires, and
  // is listed by a plain alert list (the Grafana import above), but not here.
  await page.goto(added["Cash registers (54-FZ)"]);
  const kktAlerts = page.locator(".panel[data-type=alert-list]", { has: page.getByRole("heading", { name: "KKT alerts" }) });
  await page.locator(".panel[data-type=alert-list][data-state=done]").waitFor({ timeout: 20_000 });
  assert.equal(await kktAlerts.getByText("AlwaysOn").count(), 0, "the KKT alert list shows an alert that is not the pack's");
  // The host collector's data is there: the Host dashboard's load panel draws points.
  await page.goto(added.Host);
  const load = page.locator(".panel", { has: page.getByRole("heading", { name: "Load (1 min)" }) }).locator(".chart");
  await page.waitForFunction((el) => Number(el?.dataset.points ?? 0) > 0, await load.elementHandle(), { timeout: 20_000 });
  await page.close();
});

/** A driver-log line (KKT.md §3.4) for register `reg`, emitted now. */
function kktLine(reg, event, rest, identity = {}) {
  return JSON.stringify({ ts: new Date().toISOString(), kkt: { reg_number: reg, ...identity }, event, ...rest });
}

const DAY = 86_400_000;
const iso = (ms) => new Date(ms).toISOString();

test("cash registers: the worst register first with its problems; its FN, OFD queue, errors and documents in roubles", async () => {
  // A register in trouble (FN ends in 5 days, OFD backlog of 26 days, an OFD error) that is
  // last by number, one FN warning, and a healthy one, tailed from a driver log by `dozor serve`.
  const now = Date.now();
  const own = mkdtempSync(join(tmpdir(), "dozor-ui-kkt-"));
  const log = join(own, "kkt.log");
  const bad = "0000000000000003";
  const expires = iso(now + 5 * DAY);
  // Tag 1012 is the register's wall clock, UTC+3 by default.
  const local = iso(now + 3 * 3_600_000).slice(0, 19);
  writeFileSync(
    log,
    [
      kktLine("0000000000000001", "status", {
        fn: { number: "9960440300000001", expires_at: iso(now + 300 * DAY), memory_used_ratio: 0.2 },
        ofd_queue: { unsent: 0, last_ack_at: iso(now - 60_000) },
        shift: { number: 7, open: true, opened_at: iso(now - 3_600_000), receipts: 12 },
      }, { model: "АТОЛ 30Ф", driver: "atol10" }),
      kktLine("0000000000000002", "status", {
        fn: { number: "9960440300000002", expires_at: iso(now + 20 * DAY), memory_used_ratio: 0.5 },
        ofd_queue: { unsent: 0, last_ack_at: iso(now - 60_000) },
        shift: { number: 3, open: false, receipts: 0 },
      }, { model: "Штрих-М-01Ф", driver: "shtrih" }),
      kktLine(bad, "status", {
        fn: { number: "9960440300000003", expires_at: expires, memory_used_ratio: 0.4 },
        ofd_queue: { unsent: 3, first_unsent_fd: 99, first_unsent_at: iso(now - 26 * DAY), last_ack_at: iso(now - 26 * DAY) },
        shift: { number: 10, open: true, opened_at: iso(now - 2 * 3_600_000), receipts: 4 },
      }, { model: "АТОЛ 30Ф", driver: "atol10" }),
      kktLine(bad, "document", {
        document: { fd_number: 101, kind: 3, datetime: local, fpd: 2938475610, shift: 10, operation: 1, total_kop: 125050, cash_kop: 25050, cashless_kop: 100000 },
      }),
      kktLine(bad, "error", { error: { code: "135", category: "ofd", message: "Нет транспортного соединения ФН", blocking: false } }),
    ].join("\n") + "\n",
  );
  writeFileSync(join(own, "dozor.yml"), `kkt:\n  enabled: true\n  interval: 1s\n  logs: [${JSON.stringify(log)}]\n`);
  const kkt = await startDozor(["serve", "--config", join(own, "dozor.yml"), "--data-dir", join(own, "data")], { DOZOR_ADMIN_PASSWORD: "kkt-ui-password-2026" });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  try {
    await page.goto(kkt.base + "/");
    await page.fill("input[name=username]", "admin");
    await page.fill("input[name=password]", "kkt-ui-password-2026");
    await page.click("button[type=submit]");
    await page.waitForURL(kkt.base + "/status");
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Cash registers" }).click();
    await page.waitForURL(kkt.base + "/kkt");
    const table = page.getByRole("table", { name: "Cash registers" });
    const rows = table.locator("tbody tr");
    // The tail reads the file within a second; the page asks again every 10 s.
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=kkt-registers] tbody tr").length === 3, null, { timeout: 30_000 });
    // Worst first, whatever the numbers' order (the API lists them by number).
    assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => [tr.dataset.kkt, tr.dataset.status])), [
      [bad, "critical"],
      ["0000000000000002", "warning"],
      ["0000000000000001", "ok"],
    ]);
    const first = rows.first();
    const problems = await first.locator("td.problems").innerText();
    assert.match(problems, /OFD backlog 26\.0 days \(the FN blocks at 30\)/);
    assert.match(problems, /FN expires in 5\.0 days/);
    assert.match(problems, /driver error 135/);
    assert.equal(await first.locator("td").nth(3).innerText(), "5.0", "FN days column");
    assert.equal(await first.locator("td").nth(4).innerText(), "26.0", "OFD backlog column");
    assert.equal(await first.locator("td").nth(5).innerText(), "4.0", "days until the block");
    assert.equal(await first.locator("td").nth(6).innerText(), "open 2.0 h");
    assert.equal(await first.locator("td").nth(7).innerText(), "135");
    const counters = page.getByTestId("kkt-summary");
    for (const [status, n] of [["blocked", "0"], ["critical", "1"], ["warning", "1"], ["down", "0"], ["ok", "1"]]) {
      assert.equal(await counters.locator(`[data-status=${status}] b`).innerText(), n, `${status} counter`);
    }
    // The filter keeps one status, and is in the address.
    await page.locator("select[name=status]").selectOption("ok");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=kkt-registers] tbody tr").length === 1);
    assert.equal(await rows.first().getAttribute("data-kkt"), "0000000000000001");
    assert.match(page.url(), /status=ok/);
    await page.locator("select[name=status]").selectOption("");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=kkt-registers] tbody tr").length === 3);
    await page.screenshot({ path: join(shots, "kkt.png"), fullPage: true });

    // A click on the row (not only its link) opens the register.
    await rows.first().locator("td.problems").click();
    await page.waitForURL(kkt.base + "/kkt/" + bad);
    await page.getByRole("heading", { name: `Register ${bad}` }).waitFor();
    assert.equal(await page.getByTestId("kkt-status").innerText(), "critical");
    const fnCard = await page.getByTestId("kkt-fn").innerText();
    assert.match(fnCard, /9960440300000003/);
    assert.match(fnCard, new RegExp(`Expires\\s+${expires.slice(0, 10)}`));
    assert.match(fnCard, /Days left\s+5\.0/);
    assert.match(fnCard, /Archive used\s+40\.0 %/);
    const queue = await page.getByTestId("kkt-ofd-queue").innerText();
    assert.match(queue, /Unsent documents\s+3/);
    assert.match(queue, /Backlog, days\s+26\.0/);
    assert.match(queue, /Days until block\s+4\.0/);
    assert.match(await page.getByTestId("kkt-shift").innerText(), /Open for\s+2\.0 h of 24/);
    // The error's meaning and advice from the catalogue of driver codes.
    assert.match(await page.getByRole("table", { name: "Driver errors" }).innerText(), /atol10\s+135\s+ofd\s+1\s+Нет транспортного соединения ФН/);
    assert.match(await page.getByTestId("kkt-last-error").innerText(), /Advice: check the register's internet access and OFD address/);
    // The document, read back from the driver log in the log store, with its money in roubles.
    const doc = page.getByTestId("kkt-documents").locator("tr[data-fd='101']");
    await doc.waitFor({ timeout: 20_000 });
    const cells = await doc.locator("td").allInnerTexts();
    assert.deepEqual(cells, ["101", "receipt", local, "sale", "1 250,50 ₽", "250,50 ₽", "1 000,00 ₽", "10", "2938475610"]);
    assert.match(await page.getByRole("table", { name: "Receipt amounts" }).innerText(), /sale\s+1 250,50 ₽/);
    await page.screenshot({ path: join(shots, "kkt-register.png"), fullPage: true });

    // An unknown register says so.
    await page.goto(kkt.base + "/kkt/0000000000000404");
    await page.getByRole("alert").getByText(/no register/).waitFor();
  } finally {
    await page.close();
    await stopDozor(kkt.server);
    rmSync(own, { recursive: true, force: true });
  }
});

/**
 * Runs every query of the importable Grafana dashboard deploy/grafana/<file> on Dozor — each
 * variable at its "All" value, `$__interval` as 1m — after checking the file's form: schema
 * 39, the two data-source inputs, unique panel ids, every target on its input's data source.
 * `each(panel, expr, answer)` looks further at each answer. Resolves to the dashboard and the
 * number of queries run.
 */
async function grafanaQueries(file, each = () => {}) {
  const grafana = JSON.parse(readFileSync(join(import.meta.dirname, "../../deploy/grafana", file), "utf8"));
  assert.equal(grafana.schemaVersion, 39, file);
  assert.deepEqual(grafana.__inputs.map((i) => [i.name, i.pluginId]), [["DS_DOZOR", "prometheus"], ["DS_DOZOR_LOGS", "loki"]], file);
  const ids = grafana.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, `${file}: panel ids ${ids}`);
  const inputs = { prometheus: "${DS_DOZOR}", loki: "${DS_DOZOR_LOGS}" };
  const all = (grafana.templating?.list ?? []).map((v) => ["$" + v.name, v.allValue ?? ".*"]);
  let checked = 0;
  for (const p of grafana.panels) {
    for (const t of p.targets ?? []) {
      const source = t.datasource ?? p.datasource;
      assert.equal(source?.uid, inputs[source?.type], `${file}: ${p.title}: data source ${JSON.stringify(source)}`);
      const expr = all.reduce((e, [name, value]) => e.replaceAll(name, value), t.expr.replaceAll("$__interval", "1m"));
      const path = source.type === "loki"
        ? "/loki/api/v1/query_range?" + new URLSearchParams({ query: expr, limit: "5" })
        : "/api/v1/query?" + new URLSearchParams({ query: expr });
      const r = await api("GET", path);
      assert.equal(r.status, 200, `${file}: ${p.title}: ${expr}: ${JSON.stringify(r.body)}`);
      checked++;
      each(p, expr, r.body);
    }
  }
  return { grafana, checked };
}

test("cash registers in the demo: the simulated fleet's faults, for a viewer too; the Grafana dashboards' queries run", async () => {
  // The demo's fleet of 50 registers arrives within seconds of the start.
  let fleet;
  for (let i = 0; i < 120; i++) {
    fleet = (await api("GET", "/api/v1/kkt/fleet")).body?.data;
    if (fleet?.registers?.length === 50 && fleet.registers.some((r) => r.ofd_queue?.oldest_unsent_age_seconds > 25 * 86400)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(fleet?.summary?.total, 50, JSON.stringify(fleet?.summary));
  const page = await loggedIn(VIEWER);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Cash registers" }).click();
  const rows = page.getByTestId("kkt-registers").locator("tbody tr");
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=kkt-registers] tbody tr").length === 50, null, { timeout: 20_000 });
  // The 26-day OFD outage of the demo is among the first rows, and nothing ok comes before
  // something worse.
  const statuses = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.status));
  const rank = { blocked: 0, critical: 1, down: 2, warning: 3, unknown: 4, ok: 5 };
  assert.deepEqual(statuses, [...statuses].sort((a, b) => rank[a] - rank[b]), statuses.join(","));
  assert.ok(["blocked", "critical"].includes(statuses[0]), statuses.join(","));
  await page.getByTestId("kkt-registers").getByText(/OFD backlog 2[67]\.\d days \(the FN blocks at 30\)/).waitFor();
  await page.close();

  // Every query of the importable Grafana dashboards runs on Dozor (all registers for $kkt),
  // and seed 000's panels find their series.
  const seeded = new Set(["kkt_status", "kkt_ofd_sync_status", "kkt_shift_status", "kkt_fd_memory_usage_percent"]);
  const kkt = await grafanaQueries("kkt-54fz.json", (p, expr, answer) => {
    const metric = expr.match(/^(\w+)\{/)?.[1];
    if (!seeded.has(metric)) return;
    const n = answer.data.result.length;
    assert.ok(metric === "kkt_status" ? n === 50 : n > 0, `${p.title}: ${expr}: ${n} series`);
    const mapped = Object.keys(p.fieldConfig.defaults.mappings[0]?.options ?? {});
    for (const s of answer.data.result) {
      if (mapped.length) assert.ok(mapped.includes(s.value[1]), `${p.title}: value ${s.value[1]} has no mapping`);
    }
    seeded.delete(metric);
  });
  assert.equal(kkt.grafana.templating.list[0].definition, "label_values(kkt_info, kkt)");
  assert.deepEqual([...seeded], [], "seed 000's panels");
  assert.ok(kkt.checked >= 20, `only ${kkt.checked} queries`);
  // The shop's and the marketplace's, over their packs' recorded series: this test's
  // dozor.yml loads neither pack, so their queries parse and run on no data.
  const shop = await grafanaQueries("shop.json");
  assert.equal(shop.grafana.templating.list[0].definition, "label_values(service:log_lines:count5m, service)");
  assert.ok(shop.checked >= 40, `shop: only ${shop.checked} queries`);
  const ticketing = await grafanaQueries("ticketing.json");
  assert.equal(ticketing.grafana.templating.list[0].definition, "label_values(chain:transactions:count5m, operation)");
  assert.ok(ticketing.checked >= 20, `ticketing: only ${ticketing.checked} queries`);
});

test("ticketing: the demo marketplace's sales and findings; an admin investigates one, a viewer may not, a developer is told why not", async () => {
  // The demo sends its simulated marketplace week within seconds of the start.
  let dash;
  for (let i = 0; i < 120; i++) {
    dash = (await api("GET", "/api/v1/analytics/dashboard?range=8d")).body?.data;
    if (dash?.sales?.sales > 0 && dash?.fraud?.byPattern?.scalper > 0 && dash?.fraud?.open > 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(dash?.sales?.sales > 0 && dash?.fraud?.byPattern?.scalper > 0, JSON.stringify(dash));
  const page = await loggedIn(ADMIN);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Ticketing" }).click();
  await page.waitForURL(base + "/ticketing");
  await page.getByLabel("Range").selectOption("8d");
  assert.match(page.url(), /range=8d/);
  const number = (s) => Number(s.replace(/\s/g, ""));
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=ticket-sales] [data-stat=sales] b")?.textContent.replace(/\s/g, "")) > 0, null, { timeout: 20_000 });
  assert.ok(number(await page.getByTestId("ticket-sales").locator("[data-stat=tickets] b").innerText()) > 0, "tickets");
  assert.ok(number(await page.getByTestId("ticket-sales").locator("[data-stat=buyers] b").innerText()) > 0, "buyers");
  // Findings by pattern, the scalpers among them, most first.
  const patterns = page.getByRole("table", { name: "Findings by pattern" });
  await patterns.locator("tr[data-pattern=scalper]").waitFor({ timeout: 20_000 });
  assert.ok(number(await patterns.locator("tr[data-pattern=scalper] td").nth(1).innerText()) > 0, "scalper findings");
  const perPattern = await patterns.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => Number(tr.cells[1].textContent.replace(/\s/g, ""))));
  assert.deepEqual(perPattern, [...perPattern].sort((a, b) => b - a), "most first");
  // The open findings, newest first.
  const rows = page.getByTestId("fraud-findings").locator("tbody tr[data-finding]");
  await rows.first().waitFor({ timeout: 20_000 });
  const times = await rows.evaluateAll((trs) => trs.map((tr) => tr.cells[0].textContent));
  assert.ok(times.length > 0 && times.length <= 50, `${times.length} rows`);
  assert.deepEqual(times, [...times].sort().reverse(), "newest first");
  await page.screenshot({ path: join(shots, "ticketing.png"), fullPage: true });

  // Investigate the newest: confirmed, with a note; it leaves the open list.
  const id = await rows.first().getAttribute("data-finding");
  assert.equal((await api("GET", `/api/v1/fraud/events/${id}`)).body.data.investigated, false);
  await rows.first().getByRole("button", { name: `Investigate finding ${id}` }).click();
  const form = page.getByRole("form", { name: `Investigate finding ${id}` });
  await form.getByLabel("Outcome").selectOption("confirmed");
  await form.getByLabel("Note").fill("same card behind 40 accounts");
  await form.getByRole("button", { name: "Save" }).click();
  await page.locator(`[data-testid=fraud-findings] tr[data-finding="${id}"]`).waitFor({ state: "detached", timeout: 10_000 });
  const done = await api("GET", `/api/v1/fraud/events/${id}`);
  assert.equal(done.status, 200, JSON.stringify(done.body));
  assert.equal(done.body.data.investigated, true);
  assert.equal(done.body.data.outcome, "confirmed");
  assert.equal(done.body.data.investigatedBy, ADMIN[0]);
  assert.equal(done.body.data.note, "same card behind 40 accounts");
  // Read again from the server, it stays out of the open list and counts as confirmed.
  await page.reload();
  await rows.first().waitFor({ timeout: 20_000 });
  assert.equal(await page.locator(`tr[data-finding="${id}"]`).count(), 0);
  await page.getByTestId("fraud-counts").locator("[data-stat=investigated]").getByText(/[1-9]\d* confirmed/).waitFor({ timeout: 10_000 });
  await page.close();

  // A viewer sees the findings but has no Investigate action.
  const viewer = await loggedIn(VIEWER);
  await viewer.goto(base + "/ticketing?range=8d");
  await viewer.getByTestId("fraud-findings").locator("tbody tr[data-finding]").first().waitFor({ timeout: 20_000 });
  assert.equal(await viewer.getByRole("button", { name: /^Investigate/ }).count(), 0);
  await viewer.close();

  // A developer (who sees only their own services) gets the sales, and one sentence instead
  // of the findings.
  const made = await api("POST", "/api/v1/users", { name: "dana", password: "ticket-dev-password-2026", role: "developer" });
  assert.ok(made.status < 300, JSON.stringify(made.body));
  const dev = await loggedIn(["dana", "ticket-dev-password-2026"]);
  await dev.goto(base + "/ticketing?range=8d");
  await dev.getByTestId("fraud-hidden").getByText(/your role \(developer\) does not see/).waitFor({ timeout: 20_000 });
  assert.equal(await dev.getByTestId("fraud-findings").count(), 0);
  assert.equal(await dev.getByTestId("fraud-patterns").count(), 0);
  await dev.close();
});

test("ticketing: the demo's chain — mints by operation with the congested drop's failures, the failed transactions newest first, one's history", async () => {
  // The demo's marketplace week ends with a congested drop: about a third of its mints fail.
  let chain;
  for (let i = 0; i < 120; i++) {
    chain = (await api("GET", "/api/v1/chain/metrics?range=1h")).body?.data;
    if (chain?.operations?.some((o) => o.operation === "mint" && o.failed > 0)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const mint = chain?.operations?.find((o) => o.operation === "mint");
  assert.ok(mint?.failed > 0, JSON.stringify(chain));
  assert.ok(chain.errors.some((e) => e.operation === "mint" && e.count > 0), JSON.stringify(chain.errors));
  const page = await loggedIn(ADMIN);
  await page.goto(base + "/ticketing");
  await page.getByLabel("Range").selectOption("24h");
  const number = (s) => Number(s.replace(/\s/g, ""));
  // Per operation: the mints, some failed, with a failure ratio and confirmation times.
  const ops = page.getByRole("table", { name: "Chain transactions by operation" });
  const row = ops.locator("tr[data-operation=mint]");
  await row.waitFor({ timeout: 20_000 });
  const cells = (await row.locator("td").allInnerTexts()).map((t) => t.trim());
  assert.equal(cells[0], "mint");
  assert.ok(number(cells[1]) > 0, `settled: ${cells}`);
  assert.ok(number(cells[2]) > 0 && number(cells[2]) <= number(cells[1]), `failed: ${cells}`);
  assert.match(cells[3], /^\d+\.\d %$/, "failure ratio");
  assert.match(cells[4], /^[\d\s]+ ms$/, "p50");
  assert.match(cells[5], /^[\d\s]+ ms$/, "p95");
  await page.getByRole("table", { name: "Chain errors" }).locator("tbody tr").first().waitFor();
  // The failed transactions, newest first, each signature shortened with the whole in its title.
  const failed = page.getByTestId("chain-failed");
  assert.equal(await failed.getAttribute("aria-label"), "Failed chain transactions");
  const rows = failed.locator("tbody tr[data-signature]");
  await rows.first().waitFor({ timeout: 20_000 });
  const times = await rows.evaluateAll((trs) => trs.map((tr) => tr.cells[0].textContent));
  assert.ok(times.length > 0 && times.length <= 20, `${times.length} rows`);
  assert.deepEqual(times, [...times].sort().reverse(), "newest first");
  const sig = await rows.first().getAttribute("data-signature");
  const button = rows.first().getByRole("button", { name: `Transaction ${sig}` });
  assert.equal(await button.getAttribute("title"), sig);
  assert.equal((await button.innerText()).trim(), sig.slice(0, 8) + "…");
  // Its history: submitted, then failed.
  await button.click();
  const history = page.getByRole("list", { name: `History of transaction ${sig}` });
  await history.locator("li[data-status=failed]").waitFor({ timeout: 10_000 });
  assert.deepEqual(await history.locator("li").evaluateAll((lis) => lis.map((li) => li.dataset.status)), ["submitted", "failed"]);
  await history.getByText("submitted", { exact: true }).waitFor();
  await history.getByText("failed", { exact: true }).waitFor();
  await page.screenshot({ path: join(shots, "ticketing-chain.png"), fullPage: true });
  await page.close();
});

test("service levels: without probes the page says why; imported probe and latency series fill both tables", async () => {
  const page = await loggedIn(VIEWER);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Service levels" }).click();
  await page.waitForURL(base + "/sla");
  // The demo has no probes.
  await page.getByTestId("sla-empty").getByText(/add a probes: section to dozor\.yml/).waitFor({ timeout: 20_000 });
  assert.equal(await page.getByRole("table", { name: "Service levels" }).locator("tbody tr").count(), 0);
  await page.waitForFunction(() => document.querySelector("[data-testid=performance] tbody tr") || document.querySelector("[data-testid=performance-empty]"), null, { timeout: 20_000 });
  if ((await page.getByTestId("performance").locator("tbody tr").count()) === 0) {
    assert.match(await page.getByTestId("performance-empty").innerText(), /http_request_duration_seconds histogram with an endpoint label/);
  }
  assert.equal(await page.getByRole("alert").count(), 0, "no error");

  // 50 minutes of probe results, one every 25 s: checkout always up in 200 ms, search down
  // for a quarter of them; and a latency histogram of a fast and a slow endpoint. All within
  // the last hour: the demo's head may already be cut at the 2-hour boundary before it, and
  // older samples would be refused as out of bounds.
  const now = Date.now();
  const lines = [];
  for (let i = 0; i < 120; i++) {
    const t = now - (120 - i) * 25_000;
    lines.push(`probe_success{service="checkout"} 1 ${t}`, `probe_duration_seconds{service="checkout"} 0.2 ${t}`);
    lines.push(`probe_success{service="search"} ${i >= 30 && i < 60 ? 0 : 1} ${t}`);
  }
  const buckets = { "/fast": [50, 100, 100, 100, 100, 100], "/slow": [0, 0, 10, 20, 100, 100] };
  const les = ["0.05", "0.1", "0.5", "1", "2.5", "+Inf"];
  for (const [k, ago] of [1, 2, 3].map((k) => [k, (31 - 10 * k) * 60_000])) {
    for (const [endpoint, counts] of Object.entries(buckets)) {
      les.forEach((le, j) => lines.push(`http_request_duration_seconds_bucket{endpoint="${endpoint}",le="${le}"} ${counts[j] * k} ${now - ago}`));
      lines.push(`http_request_duration_seconds_count{endpoint="${endpoint}",code="200"} ${100 * k} ${now - ago}`);
    }
    lines.push(`http_request_duration_seconds_count{endpoint="/slow",code="500"} ${25 * k} ${now - ago}`);
  }
  const imported = await fetch(base + "/api/v1/import/prometheus", {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "text/plain" },
    body: lines.join("\n") + "\n",
  });
  assert.ok(imported.ok, `import: ${imported.status} ${await imported.text()}`);

  await page.getByLabel("Window").selectOption("1d");
  assert.match(page.url(), /window=1d/);
  const sla = page.getByRole("table", { name: "Service levels" });
  await sla.locator("tr[data-service=search]").waitFor({ timeout: 20_000 });
  const cells = async (tr) => (await tr.locator("td").allInnerTexts()).map((t) => t.trim());
  assert.deepEqual(await cells(sla.locator("tr[data-service=checkout]")), ["checkout", "100.000 %", "met", "200 ms", "0", "0 s", "100.0 %"]);
  const search = await cells(sla.locator("tr[data-service=search]"));
  assert.deepEqual(search.slice(0, 4), ["search", "75.000 %", "missed", "—"]);
  assert.ok(Number(search[4]) >= 1, `violations: ${search[4]}`);
  assert.equal(search[5], "6 h 0 min", "a quarter of a day down");
  assert.equal(search[6], "-24900.0 %", "the budget, overspent 250 times");
  assert.match(await sla.locator("tr[data-service=search] td").nth(6).getAttribute("class"), /\berror\b/, "overspent in red");
  assert.match(await sla.locator("tr[data-service=search] .badge").getAttribute("class"), /kkt-critical/);
  await page.getByTestId("sla-empty").waitFor({ state: "detached" });

  // A target the server refuses says why.
  await page.getByLabel("Target, %").fill("100");
  await page.getByLabel("Target, %").press("Enter");
  await page.getByRole("alert").getByText(/target/).waitFor({ timeout: 10_000 });
  await page.getByLabel("Target, %").fill("99");
  await page.getByLabel("Target, %").press("Enter");
  await page.getByRole("alert").waitFor({ state: "detached", timeout: 10_000 });
  assert.match(page.url(), /target=99(&|$)/);

  // Endpoints slowest first, with p95 and the share of errors.
  await page.getByLabel("Range").selectOption("15m");
  assert.match(page.url(), /range=15m/);
  const perf = page.getByRole("table", { name: "Endpoint performance" });
  await perf.locator("tr[data-endpoint='/fast']").waitFor({ timeout: 20_000 });
  const endpoints = await perf.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.endpoint));
  assert.deepEqual(endpoints.filter((e) => e === "/fast" || e === "/slow"), ["/slow", "/fast"]);
  const p95 = await perf.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => tr.cells[3].textContent));
  const ms = p95.map((t) => (t === "—" ? -1 : Number(t.replace(" ms", ""))));
  assert.deepEqual(ms, [...ms].sort((a, b) => b - a), `p95 descending: ${p95.join(", ")}`);
  const slow = await cells(perf.locator("tr[data-endpoint='/slow']"));
  assert.equal(slow[3], "2406 ms");
  assert.equal(slow[5], "20.00 %", "25 of 125 failed");
  const fast = await cells(perf.locator("tr[data-endpoint='/fast']"));
  assert.equal(fast[3], "95 ms");
  assert.equal(fast[5], "0.00 %");
  await page.getByTestId("performance-empty").waitFor({ state: "detached" });
  await page.screenshot({ path: join(shots, "sla.png"), fullPage: true });
  await page.close();
});

test("the overview shows health, the firing alert and the top error clusters", async () => {
  const now = Math.floor(Date.now() / 1000);
  const errors = [...Array(6).keys()].map((i) => JSON.stringify({ _time: now - 30 + i, service: "billing", level: "error", _msg: `invoice ${4000 + i} rejected by the bank` })).join("\n");
  assert.equal((await api("POST", "/api/v1/logs/ingest", errors)).status, 200);
  const page = await loggedIn(ADMIN);
  await page.getByRole("table", { name: "Error clusters" }).getByText("invoice <*> rejected by the bank").waitFor({ timeout: 20_000 });
  await page.getByRole("table", { name: "SLOs" }).getByRole("row", { name: /api 99\.50 %/ }).waitFor();
  await page.getByTestId("health").getByText(/^(ok|degraded|down)$/).waitFor();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=firing] b")?.textContent) >= 1, null, { timeout: 30_000 });
  await page.close();
});

test("rules: the editor previews what a rule would have fired over the last day, then saves it", async () => {
  // Twenty minutes of high load half an hour ago (55 minutes of samples, one a minute: the
  // demo's metric store may refuse samples older than an hour, its head's last cut).
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  const lines = [];
  for (let m = 55; m >= 0; m--) lines.push(`preview_load{host="db1"} ${m >= 20 && m < 40 ? 9 : 1} ${now - m * 60_000}`);
  const res = await fetch(base + "/api/v1/import/prometheus", {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "text/plain" },
    body: lines.join("\n") + "\n",
  });
  assert.ok(res.ok, `import: ${res.status} ${await res.text()}`);
  const page = await loggedIn(ADMIN);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Alerts" }).click();
  const rule = { name: "DB busy", condition: { type: "threshold", metric: "preview_load", operator: ">", value: 4 }, severity: "warning", for: "5m" };
  await page.getByLabel("Rule JSON").fill(JSON.stringify(rule));
  await page.getByRole("button", { name: "Preview the last day" }).click();
  await page.getByTestId("preview").getByText("would have fired 1 time").waitFor();
  await page.getByTestId("preview").getByText(/host=db1/).waitFor();
  await page.getByRole("button", { name: "Save rule" }).click();
  await page.getByRole("table", { name: "Alert rules" }).getByText("DB busy").waitFor();
  await page.screenshot({ path: join(shots, "rules.png"), fullPage: true });
  // A rule that does not check says where.
  await page.getByLabel("Rule JSON").fill(JSON.stringify({ ...rule, condition: { ...rule.condition, operator: "=>" } }));
  await page.getByRole("button", { name: "Preview the last day" }).click();
  await page.getByRole("alert").getByText(/condition\.operator/).waitFor();
  // The advisor notices a failure metric nobody watches.
  const now2 = Date.now();
  const bad = await fetch(base + "/api/v1/import/prometheus", {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "text/plain" },
    body: `checkout_errors_total 3 ${now2}\n`,
  });
  assert.ok(bad.ok);
  await page.reload();
  await page.getByRole("list", { name: "Rule advice" }).getByText("checkout_errors_total").waitFor({ timeout: 20_000 });
  await page.getByRole("button", { name: "Delete rule DB busy" }).click();
  await page.getByRole("table", { name: "Alert rules" }).getByText("DB busy").waitFor({ state: "detached" });
  await page.close();
});

test("silences: one is added from matchers and expired", async () => {
  const page = await loggedIn(ADMIN);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Alerts" }).click();
  const form = page.getByRole("form", { name: "Add a silence" });
  await form.getByLabel("Matchers").fill('alertname="AlwaysOn", severity=~"warn.*"');
  await form.getByLabel("Comment").fill("maintenance window");
  await form.getByRole("button", { name: "Silence" }).click();
  const table = page.getByRole("table", { name: "Silences" });
  await table.getByText('alertname="AlwaysOn", severity=~"warn.*"').waitFor();
  await table.getByText("active").waitFor();
  // A matcher that does not parse says so.
  await form.getByLabel("Matchers").fill("not a matcher");
  await form.getByLabel("Comment").fill("x");
  await form.getByRole("button", { name: "Silence" }).click();
  await page.getByRole("alert").getByText(/not a matcher/).waitFor();
  await table.getByRole("button", { name: "Expire silence maintenance window" }).click();
  await table.getByText("maintenance window").waitFor({ state: "detached" });
  await page.close();
});

/** Text on the page whose contrast with its background is below WCAG AA (4.5:1, or 3:1
 * for large text), as "text (ratio)". */
async function lowContrast(page) {
  return page.evaluate(() => {
    const rgb = (c) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const bad = [];
    for (const el of document.querySelectorAll("body *")) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      const box = el.getBoundingClientRect();
      if (!own || box.width === 0 || box.height === 0 || el.closest(".uplot")) continue;
      const style = getComputedStyle(el);
      if (style.visibility === "hidden" || Number(style.opacity) < 1 || el.closest("button:disabled")) continue;
      const a = lum(rgb(style.color).slice(0, 3));
      const b = lum(background(el));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 30)}" (${ratio.toFixed(2)})`);
    }
    return bad;
  });
}

test("every page has readable contrast and its controls are reachable by keyboard", async () => {
  const page = await loggedIn(ADMIN);
  for (const path of ["/status", "/explore?query=node_load1", "/logs", "/dashboards", "/alerts", "/incidents", "/kkt", "/sla", "/ticketing?range=8d", "/audit", "/settings"]) {
    await page.goto(base + path);
    await page.locator("main.page").waitFor();
    await new Promise((r) => setTimeout(r, 800));
    const bad = await lowContrast(page);
    assert.deepEqual(bad, [], `${path}: low contrast`);
    // Every button, link, input and select of the page is reached with Tab.
    const total = await page.locator("main button:visible, main a:visible, main input:visible, main select:visible, main textarea:visible").count();
    const reached = new Set();
    for (let i = 0; i < total + 20 && reached.size < total; i++) {
      await page.keyboard.press("Tab");
      const tag = await page.evaluate(() => {
        const a = document.activeElement;
        return a && a.closest("main") ? [...document.querySelectorAll("main button, main a, main input, main select, main textarea")].indexOf(a) : -1;
      });
      if (tag >= 0) reached.add(tag);
    }
    assert.equal(reached.size, total, `${path}: ${total - reached.size} controls never got the focus`);
  }
  await page.close();
});
