// Unit tests of the page's modules that need no browser: api.js against a real local
// HTTP server (JSON, HTTP error, non-JSON, timeout, refused connection) and messages.js.
// Run: node --test front/tests/
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { getJson } from "../site/assets/api.js";
import { describeOutcome } from "../site/assets/messages.js";

let server;
let base;

before(async () => {
  server = createServer((req, res) => {
    const send = (status, type, body) => {
      res.writeHead(status, { "Content-Type": type });
      res.end(body);
    };
    if (req.url === "/json") send(200, "application/json", '{"service":"api"}');
    else if (req.url === "/down") send(502, "application/json", '{"error":"api_unreachable"}');
    else if (req.url === "/html") send(200, "text/html", "<h1>oops</h1>");
    else if (req.url === "/slow") setTimeout(() => send(200, "application/json", "{}"), 1500);
    else send(404, "application/json", '{"error":"not_found"}');
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.closeAllConnections?.() ?? server.close());

describe("getJson", () => {
  it("returns the parsed body and status of a JSON answer", async () => {
    const outcome = await getJson(`${base}/json`);
    assert.equal(outcome.kind, "ok");
    assert.equal(outcome.status, 200);
    assert.deepEqual(outcome.data, { service: "api" });
    assert.ok(outcome.durationMs >= 0);
  });

  it("reports an HTTP error with its JSON body", async () => {
    const outcome = await getJson(`${base}/down`);
    assert.equal(outcome.kind, "http_error");
    assert.equal(outcome.status, 502);
    assert.equal(outcome.data.error, "api_unreachable");
  });

  it("reports a body that is not JSON", async () => {
    const outcome = await getJson(`${base}/html`);
    assert.equal(outcome.kind, "not_json");
    assert.equal(outcome.text, "<h1>oops</h1>");
  });

  it("gives up after the timeout", async () => {
    const outcome = await getJson(`${base}/slow`, { timeoutMs: 200 });
    assert.equal(outcome.kind, "timeout");
    assert.equal(outcome.status, null);
    assert.ok(outcome.durationMs < 1000, `took ${outcome.durationMs} ms`);
  });

  it("reports a refused connection as a network error", async () => {
    const outcome = await getJson("http://127.0.0.1:1/", { timeoutMs: 2000 });
    assert.equal(outcome.kind, "network");
  });
});

describe("describeOutcome", () => {
  const view = (outcome) => describeOutcome({ durationMs: 1, ...outcome }, 5000);

  it("success: pretty-printed JSON", () => {
    const v = view({ kind: "ok", status: 200, data: { a: 1 } });
    assert.equal(v.ok, true);
    assert.equal(v.body, '{\n  "a": 1\n}');
  });

  it("502/503/504: the API is unavailable", () => {
    for (const status of [502, 503, 504]) {
      assert.match(view({ kind: "http_error", status, data: {} }).message, /L'API est indisponible/);
    }
    assert.match(view({ kind: "http_error", status: 404, data: {} }).message, /erreur \(HTTP 404\)/);
  });

  it("timeout, non-JSON and network errors have their own French message", () => {
    assert.match(view({ kind: "timeout", status: null }).message, /délai de 5 secondes/);
    const raw = view({ kind: "not_json", status: 200, text: "x".repeat(5000) });
    assert.match(raw.message, /n'a pas renvoyé de JSON/);
    assert.ok(raw.body.length <= 2001, "a long raw body is cut");
    assert.equal(view({ kind: "not_json", status: 200, text: "" }).body, null);
    assert.match(view({ kind: "network", status: null }).message, /Impossible de joindre le serveur/);
  });
});
