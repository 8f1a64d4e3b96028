// DataPress demo page: the environment banner and the « Tester l'API » button.
import { DEFAULT_TIMEOUT_MS, getJson } from "./api.js";
import { describeOutcome } from "./messages.js";

const BANNER_TIMEOUT_MS = 3000;

const $ = (id) => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing element #${id}`);
  return element;
};

/** Fill the environment banner from /api/info; keep it hidden when the API is away. */
async function loadBanner() {
  const banner = $("env-banner");
  const outcome = await getJson("/api/info", { timeoutMs: BANNER_TIMEOUT_MS });
  const info = outcome.kind === "ok" ? outcome.data : null;
  if (!info || typeof info !== "object" || typeof info.env !== "string" || info.env === "") {
    banner.hidden = true;
    document.documentElement.dataset.banner = "hidden";
    return false;
  }
  $("env-name").textContent = info.env;
  $("env-text").textContent = typeof info.banner === "string" ? info.banner : "";
  banner.dataset.env = info.env.toLowerCase();
  banner.hidden = false;
  document.documentElement.dataset.banner = "shown";
  return true;
}

/** Render one outcome of GET /api/ into the live region and the JSON panel. */
function renderOutcome(outcome) {
  const view = describeOutcome(outcome, DEFAULT_TIMEOUT_MS);
  const result = $("result");
  result.classList.remove("result--ok", "result--error");
  result.classList.add(view.ok ? "result--ok" : "result--error");
  result.dataset.state = view.ok ? "ok" : "error";
  $("result-status").textContent = view.message;

  $("result-code").textContent = outcome.status === null ? "aucune réponse" : String(outcome.status);
  $("result-duration").textContent = `${outcome.durationMs.toLocaleString("fr-FR")} ms`;
  $("result-meta").hidden = false;

  const wrapper = $("result-body-wrapper");
  if (view.body === null) {
    wrapper.hidden = true;
    $("result-body").textContent = "";
  } else {
    $("result-body-title").textContent = view.bodyTitle;
    $("result-body").textContent = view.body;
    wrapper.hidden = false;
  }
}

function setLoading(button, loading) {
  button.setAttribute("aria-disabled", String(loading));
  button.classList.toggle("is-loading", loading);
  $("test-api-label").textContent = loading ? "Test en cours…" : "Tester l'API";
  $("result").setAttribute("aria-busy", String(loading));
  if (loading) {
    $("result").dataset.state = "loading";
    $("result").classList.remove("result--ok", "result--error");
    $("result-status").textContent = "Appel de l'API en cours…";
  }
}

function setup() {
  const button = $("test-api");
  $("timeout-seconds").textContent = String(DEFAULT_TIMEOUT_MS / 1000);
  let inFlight = false;

  button.addEventListener("click", async () => {
    // aria-disabled keeps keyboard focus on the button; this guard prevents double submits.
    if (inFlight) return;
    inFlight = true;
    setLoading(button, true);
    try {
      const outcome = await getJson("/api/", { timeoutMs: DEFAULT_TIMEOUT_MS });
      renderOutcome(outcome);
      if (outcome.kind === "ok" && $("env-banner").hidden) await loadBanner();
    } finally {
      setLoading(button, false);
      inFlight = false;
    }
  });

  document.documentElement.classList.add("js-ready");
  loadBanner();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", setup, { once: true });
} else {
  setup();
}
