// What the browser tests share: a real `dozor` process on a free port (its address read
// from what it prints), Debian's Chromium, and the screenshot folder. Not a test file.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const root = resolve(import.meta.dirname, "../..");
export const bin = process.env.DOZOR_BIN ?? join(root, "target/debug/dozor");
export const shots = join(root, "target/ui-screenshots");

/** Starts `dozor <args>` with `env`; resolves to the child and its base URL once ready. */
export async function startDozor(args, env) {
  mkdirSync(shots, { recursive: true });
  const server = spawn(bin, [...args, "--listen", "127.0.0.1:0"], {
    env: { ...process.env, DOZOR_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const base = await new Promise((ok, fail) => {
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) ok(m[1]);
    });
    server.on("exit", (code) => fail(new Error(`dozor exited early with ${code}`)));
  });
  const until = Date.now() + 10_000;
  for (;;) {
    if ((await fetch(base + "/readyz").catch(() => null))?.ok) break;
    if (Date.now() > until) throw new Error(`dozor did not become ready at ${base}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { server, base };
}

/** Stops a `dozor` started by `startDozor` and waits for it to exit. */
export async function stopDozor(server) {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await exited;
  }
}

/** Headless Chromium (`CHROMIUM_PATH`, default Debian's). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
