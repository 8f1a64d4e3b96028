// Browser end-to-end test of the DataPress front, against any running deployment:
// local NGINX + API (tests/e2e/front.sh), Docker Compose (:8081) or Kubernetes (NodePort 30080).
//
// Usage: tests/e2e/front.e2e.sh --base-url http://127.0.0.1:8081 [options]
//   (or node tests/e2e/front.e2e.mjs ... with the modules at hand)
//   --api-stop-cmd CMD    shell command that stops the API (enables the outage test)
//   --api-start-cmd CMD   shell command that starts it again and returns once it is up
//   --no-api-control      the caller cannot stop the API: the outage test is skipped (default
//                         when no stop/start commands are given; this flag just says it)
//   --expect-api-down     only check the page's behaviour while the API is already down
//                         (a caller that stops the API itself, e.g. with docker, runs this)
//   --expect-env NAME     the environment the banner must show (default: what /api/info says)
//   --expect-banner TEXT  the banner text it must show (default: what /api/info says)
//   --artifacts DIR       screenshots go there (default: <repo>/build/e2e)
//   --chromium PATH       browser binary (default: $CHROMIUM or /usr/bin/chromium)
// Modules come from tests/e2e/node_modules or from $DP_E2E_NODE_PREFIX/node_modules
// (tests/e2e/front.e2e.sh installs them in the cache and sets that variable).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../..");
const require = createRequire(
  process.env.DP_E2E_NODE_PREFIX ? join(process.env.DP_E2E_NODE_PREFIX, "package.json") : import.meta.url,
);
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const { values: opts } = parseArgs({
  options: {
    "base-url": { type: "string" },
    "api-stop-cmd": { type: "string" },
    "api-start-cmd": { type: "string" },
    "no-api-control": { type: "boolean", default: false },
    "expect-api-down": { type: "boolean", default: false },
    "expect-env": { type: "string" },
    "expect-banner": { type: "string" },
    artifacts: { type: "string", default: join(repoRoot, "build/e2e") },
    chromium: { type: "string", default: process.env.CHROMIUM || "/usr/bin/chromium" },
  },
  strict: true,
});
if (!opts["base-url"]) {
  console.error("usage: node tests/e2e/front.e2e.mjs --base-url URL [--api-stop-cmd CMD --api-start-cmd CMD]");
  process.exit(2);
}
const baseUrl = opts["base-url"].replace(/\/+$/, "");
const origin = new URL(baseUrl).origin;
const canRestartApi = !opts["no-api-control"] && Boolean(opts["api-stop-cmd"] && opts["api-start-cmd"]);
mkdirSync(opts.artifacts, { recursive: true });

// The page's version line is derived from the workspace version: major.minor.
const workspaceVersion = readFileSync(join(repoRoot, "Cargo.toml"), "utf8").match(
  /\[workspace\.package\][^[]*?\nversion = "(\d+)\.(\d+)\.\d+/,
);
assert.ok(workspaceVersion, "workspace version not found in Cargo.toml");
const expectedVersionLine = `v${workspaceVersion[1]}.${workspaceVersion[2]} – Environnement de démonstration`;

const PAGE_TIMEOUT_MS = 5000;
const SECURITY_HEADERS = {
  "content-security-policy": /default-src 'none'.*script-src 'self'.*style-src 'self'.*frame-ancestors 'none'/,
  "x-content-type-options": /^nosniff$/,
  "x-frame-options": /^DENY$/,
  "referrer-policy": /^(no-referrer|same-origin|strict-origin(-when-cross-origin)?)$/,
  "permissions-policy": /camera=\(\)/,
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function http(path, init = {}) {
  const response = await fetch(baseUrl + path, { redirect: "manual", ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

function assertSecurityHeaders(headers, what) {
  for (const [name, pattern] of Object.entries(SECURITY_HEADERS)) {
    const value = headers.get(name);
    assert.ok(value, `${what}: header ${name} missing`);
    assert.match(value, pattern, `${what}: header ${name} = ${value}`);
  }
  const server = headers.get("server");
  assert.ok(!server || !/\d/.test(server), `${what}: Server header leaks a version (${server})`);
}

function run(cmd) {
  console.log(`# running: ${cmd}`);
  execSync(cmd, { stdio: "inherit", shell: "/bin/bash", timeout: 180_000 });
}

let browser;

async function openPage({ colorScheme = "light", viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, locale: "fr-FR", reducedMotion: "reduce" });
  const page = await context.newPage();
  const record = { requests: [], consoleErrors: [], cspViolations: [] };
  page.on("request", (req) => record.requests.push(req.url()));
  page.on("console", (msg) => msg.type() === "error" && record.consoleErrors.push(msg.text()));
  page.on("pageerror", (err) => record.consoleErrors.push(`pageerror: ${err.message}`));
  // Injected by the browser itself, so it is not subject to the page's CSP.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const response = await page.goto(`${baseUrl}/`, { waitUntil: "load" });
  assert.equal(response.status(), 200, "the page answers 200");
  await page.waitForFunction(() => document.documentElement.dataset.banner, null, { timeout: 10_000 });
  record.csp = () => page.evaluate(() => window.__cspViolations);
  return { context, page, record };
}

/** Click « Tester l'API » and wait until the page shows an outcome; returns the time it took. */
async function clickTest(page, { via = "mouse" } = {}) {
  const button = page.getByRole("button", { name: "Tester l'API" });
  const started = Date.now();
  if (via === "keyboard") await page.keyboard.press("Enter");
  else await button.click();
  await page.waitForFunction(() => ["ok", "error"].includes(document.getElementById("result").dataset.state), null, {
    timeout: PAGE_TIMEOUT_MS + 5000,
  });
  return Date.now() - started;
}

async function readResult(page) {
  return page.evaluate(() => ({
    state: document.getElementById("result").dataset.state,
    status: document.getElementById("result-status").textContent,
    code: document.getElementById("result-code").textContent,
    duration: document.getElementById("result-duration").textContent,
    body: document.getElementById("result-body").textContent,
    bodyShown: !document.getElementById("result-body-wrapper").hidden,
    busy: document.getElementById("result").getAttribute("aria-busy"),
    buttonDisabled: document.getElementById("test-api").getAttribute("aria-disabled"),
  }));
}

async function axeAudit(page, label) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(axeSource);
  const results = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ["violations"] }).then((r) =>
      r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })),
    ),
  );
  assert.deepEqual(results, [], `${label}: accessibility violations\n${JSON.stringify(results, null, 2)}`);
}

async function assertApiDownBehaviour(label) {
  const { context, page } = await openPage();
  try {
    assert.equal(await page.evaluate(() => document.documentElement.dataset.banner), "hidden", "banner hidden while the API is down");
    assert.equal(await page.locator("#env-banner").isVisible(), false);
    const took = await clickTest(page);
    const result = await readResult(page);
    assert.equal(result.state, "error");
    assert.match(result.status, /L'API est indisponible pour le moment \(HTTP 50[234]\)|Impossible de joindre le serveur|n'a pas répondu dans le délai/);
    assert.ok(took < PAGE_TIMEOUT_MS + 4000, `the page gave up in ${took} ms (no hang)`);
    assert.equal(result.buttonDisabled, "false", "the button is usable again");
    await page.screenshot({ path: join(opts.artifacts, `front-api-down${label}.png`), fullPage: true });
    await axeAudit(page, "API down");
    const health = await http("/healthz");
    assert.equal(health.status, 200, "/healthz does not depend on the API");
  } finally {
    await context.close();
  }
}

before(async () => {
  browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
});

describe(`DataPress front at ${baseUrl}`, { skip: opts["expect-api-down"] && "--expect-api-down given" }, () => {
  it("NGINX answers /healthz by itself, with the security headers", async () => {
    const r = await http("/healthz");
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: "ok" });
    assertSecurityHeaders(r.headers, "/healthz");
  });

  it("serves the page with security headers, no-cache HTML, cached gzip assets and a request id", async () => {
    const page = await http("/", { headers: { "X-Request-Id": "e2e-front-0001" } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /^text\/html; charset=utf-8/);
    assertSecurityHeaders(page.headers, "/");
    assert.match(page.headers.get("cache-control") ?? "", /no-cache/, "index.html is revalidated");
    assert.equal(page.headers.get("x-request-id"), "e2e-front-0001", "a sane caller request id is kept");
    const generated = await http("/", { headers: { "X-Request-Id": "bad id\twith spaces" } });
    assert.match(generated.headers.get("x-request-id"), /^[0-9a-f]{32}$/, "an unsafe request id is replaced");

    const asset = page.text.match(/src="(assets\/[0-9a-f]{12}\/app\.js)"/);
    assert.ok(asset, "index.html references the content-hashed app.js");
    const js = await http(`/${asset[1]}`, { headers: { "Accept-Encoding": "gzip" } });
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type"), /^(text|application)\/javascript/);
    assert.equal(js.headers.get("content-encoding"), "gzip", "assets are gzipped");
    const maxAge = Number((js.headers.get("cache-control") ?? "").match(/max-age=(\d+)/)?.[1] ?? 0);
    assert.ok(maxAge >= 86_400 * 30, `hashed assets are cached (max-age=${maxAge})`);
    assertSecurityHeaders(js.headers, "app.js");
  });

  it("proxies only /api/, /api/health and /api/info; any other /api/* is a JSON 404 from NGINX", async () => {
    const root = await http("/api/");
    assert.equal(root.status, 200, "/api/");
    assert.equal(root.json?.service, "api");
    const health = await http("/api/health");
    assert.equal(health.status, 200, "/api/health");
    assert.deepEqual(health.json, { status: "ok" });
    const info = await http("/api/info");
    assert.equal(info.status, 200, "/api/info");
    assert.equal(typeof info.json?.env, "string");
    assert.ok(!JSON.stringify(info.json).match(/"db_password"\s*:\s*"(?!set"|unset")/), "no secret in /api/info");
    for (const path of ["/api/metrics", "/api/ready", "/api/health/x", "/api/info/", "/api"]) {
      const r = await http(path);
      assert.equal(r.status, 404, `${path} must be 404`);
      assert.equal(r.json?.error, "not_found", `${path} answers JSON from NGINX: ${r.text}`);
      assertSecurityHeaders(r.headers, path);
    }
    assertSecurityHeaders(root.headers, "/api/");
  });

  it("shows the title, the derived version line and the banner from /api/info", async () => {
    const info = (await http("/api/info")).json;
    const expectedEnv = opts["expect-env"] ?? info.env;
    const { context, page, record } = await openPage();
    try {
      assert.equal(await page.title(), "DataPress – POC");
      assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "DataPress – POC");
      assert.equal((await page.locator("#version-line").textContent()).trim(), expectedVersionLine);
      assert.equal(await page.evaluate(() => document.documentElement.lang), "fr");
      const banner = page.getByRole("region", { name: "Environnement" });
      assert.ok(await banner.isVisible(), "banner visible");
      assert.equal(await page.locator("#env-name").textContent(), expectedEnv);
      assert.equal(await page.locator("#env-text").textContent(), opts["expect-banner"] ?? info.banner ?? "");
      await axeAudit(page, "initial page");
      assert.deepEqual(await record.csp(), [], "no CSP violation");
      assert.deepEqual(record.consoleErrors, [], "no console error");
      const foreign = record.requests.filter((u) => new URL(u).origin !== origin);
      assert.deepEqual(foreign, [], "no external resource");
    } finally {
      await context.close();
    }
  });

  it("« Tester l'API » shows status 200, the time taken and the API's JSON (screenshot saved)", async () => {
    const { context, page, record } = await openPage();
    try {
      const before = Date.now();
      const took = await clickTest(page);
      const result = await readResult(page);
      assert.equal(result.state, "ok", result.status);
      assert.match(result.status, /L'API a répondu correctement \(HTTP 200\)/);
      assert.equal(result.code, "200");
      assert.match(result.duration, /^\d[\d\s\u202f]* ms$/);
      assert.ok(result.bodyShown);
      const body = JSON.parse(result.body);
      assert.equal(body.service, "api");
      assert.match(body.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, `ts is RFC 3339 UTC with microseconds: ${body.ts}`);
      const skew = Math.abs(Date.parse(body.ts) - before);
      assert.ok(skew < 5000, `ts within 5 s of now (off by ${skew} ms)`);
      assert.equal(result.body, JSON.stringify(body, null, 2), "the JSON is pretty-printed");
      assert.ok(took < PAGE_TIMEOUT_MS, `answered in ${took} ms`);
      await page.mouse.move(0, 0); // no hover colour on the documentation screenshot
      await page.screenshot({ path: join(opts.artifacts, "front-after-click.png"), fullPage: true });
      await axeAudit(page, "after click");
      assert.deepEqual(await record.csp(), [], "no CSP violation");
      assert.deepEqual(record.consoleErrors, [], "no console error");
    } finally {
      await context.close();
    }
  });

  it("works with the keyboard: skip link, visible focus, Enter on the button", async () => {
    const { context, page } = await openPage();
    try {
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement.className), "skip-link");
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement.id), "test-api");
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(outline, "none", "focus is visible");
      await clickTest(page, { via: "keyboard" });
      assert.equal((await readResult(page)).state, "ok");
      assert.equal(await page.evaluate(() => document.activeElement.id), "test-api", "focus stays on the button");
    } finally {
      await context.close();
    }
  });

  it("has a loading state and ignores double submits", async () => {
    const { context, page } = await openPage();
    try {
      let apiCalls = 0;
      // The answer is held until the third click, however slow the machine is.
      let release;
      const held = new Promise((resolve) => (release = resolve));
      await page.route("**/api/", async (route) => {
        apiCalls += 1;
        await held;
        await route.continue();
      });
      await page.evaluate(() => {
        const b = document.getElementById("test-api");
        b.click();
        b.click();
      });
      const loading = await readResult(page);
      assert.equal(loading.buttonDisabled, "true");
      assert.equal(loading.busy, "true");
      assert.equal(await page.locator("#test-api-label").textContent(), "Test en cours…");
      await page.getByRole("button", { name: "Test en cours…" }).click({ force: true });
      release();
      await page.waitForFunction(() => document.getElementById("result").dataset.state === "ok");
      assert.equal(apiCalls, 1, "one request for three clicks");
      assert.equal((await readResult(page)).buttonDisabled, "false");
    } finally {
      await context.close();
    }
  });

  it("explains a slow API (timeout) and a non-JSON answer in French", async () => {
    const { context, page } = await openPage();
    try {
      await page.route("**/api/", async (route) => {
        await sleep(PAGE_TIMEOUT_MS + 1500);
        await route.fulfill({ status: 200, contentType: "application/json", body: "{}" }).catch(() => {});
      });
      const took = await clickTest(page);
      let result = await readResult(page);
      assert.equal(result.state, "error");
      assert.match(result.status, /L'API n'a pas répondu dans le délai de 5 secondes/);
      assert.equal(result.code, "aucune réponse");
      assert.ok(took >= PAGE_TIMEOUT_MS - 200 && took < PAGE_TIMEOUT_MS + 4000, `gave up after ${took} ms`);

      await page.unroute("**/api/");
      await page.route("**/api/", (route) =>
        route.fulfill({ status: 200, contentType: "text/html", body: "<html><body>Bonjour</body></html>" }),
      );
      await clickTest(page);
      result = await readResult(page);
      assert.equal(result.state, "error");
      assert.match(result.status, /Réponse inattendue : l'API n'a pas renvoyé de JSON \(HTTP 200\)/);
      assert.match(result.body, /Bonjour/);
      await axeAudit(page, "error state");
    } finally {
      await context.close();
    }
  });

  it("is responsive (narrow screen, no horizontal scroll) and accessible in dark mode", async () => {
    const { context, page } = await openPage({ viewport: { width: 360, height: 740 }, colorScheme: "dark" });
    try {
      await clickTest(page);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scroll (overflow ${overflow}px)`);
      await page.screenshot({ path: join(opts.artifacts, "front-mobile-dark.png"), fullPage: true });
      await axeAudit(page, "narrow dark page");
    } finally {
      await context.close();
    }
  });

  it("API stopped: French error, no hang, banner hidden; API restarted: works again", {
    skip: !canRestartApi && "no --api-stop-cmd/--api-start-cmd: the caller cannot control the API",
  }, async () => {
    run(opts["api-stop-cmd"]);
    try {
      await assertApiDownBehaviour("");
    } finally {
      run(opts["api-start-cmd"]);
    }
    const { context, page } = await openPage();
    try {
      assert.equal(await page.evaluate(() => document.documentElement.dataset.banner), "shown");
      await clickTest(page);
      const result = await readResult(page);
      assert.equal(result.state, "ok", result.status);
      assert.equal(JSON.parse(result.body).service, "api");
    } finally {
      await context.close();
    }
  });
});

describe(`DataPress front at ${baseUrl}, API down`, { skip: !opts["expect-api-down"] && "needs --expect-api-down" }, () => {
  it("shows the French error, hides the banner, does not hang; /healthz still answers", async () => {
    await assertApiDownBehaviour("-external");
  });
});
