// Talks to the DataPress API through the same-origin NGINX proxy (/api/...).
// Every call ends within its timeout and never throws: the caller gets a plain outcome.

export const DEFAULT_TIMEOUT_MS = 5000;

/**
 * @typedef {Object} ApiOutcome
 * @property {"ok"|"http_error"|"not_json"|"timeout"|"network"} kind
 * @property {number|null} status   HTTP status, null when no answer arrived
 * @property {number} durationMs     time from request start to full body
 * @property {unknown} [data]        parsed JSON body when there is one
 * @property {string} [text]         raw body when it is not JSON
 */

/** GET a JSON document; resolves to an ApiOutcome, never rejects. */
export async function getJson(path, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(path, {
      method: "GET",
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
      signal: controller.signal,
    });
    const text = await response.text();
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return { kind: "not_json", status: response.status, durationMs: elapsed(), text };
    }
    const kind = response.ok ? "ok" : "http_error";
    return { kind, status: response.status, durationMs: elapsed(), data };
  } catch (error) {
    const kind = controller.signal.aborted ? "timeout" : "network";
    return { kind, status: null, durationMs: elapsed(), error: String(error) };
  } finally {
    clearTimeout(timer);
  }
}
