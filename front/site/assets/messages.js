// French wording of every outcome of an API call, kept apart from the DOM code.

const UNAVAILABLE = new Set([502, 503, 504]);
const MAX_RAW_BODY = 2000;

/**
 * Turn an ApiOutcome (see api.js) into what the page shows.
 * @returns {{ok: boolean, message: string, body: string|null, bodyTitle: string}}
 */
export function describeOutcome(outcome, timeoutMs) {
  const seconds = Math.round(timeoutMs / 1000);
  const json = (data) => JSON.stringify(data, null, 2);
  switch (outcome.kind) {
    case "ok":
      return {
        ok: true,
        message: `L'API a répondu correctement (HTTP ${outcome.status}).`,
        body: json(outcome.data),
        bodyTitle: "Réponse JSON",
      };
    case "http_error":
      return {
        ok: false,
        message: UNAVAILABLE.has(outcome.status)
          ? `L'API est indisponible pour le moment (HTTP ${outcome.status}). Réessayez dans quelques instants.`
          : `L'API a répondu par une erreur (HTTP ${outcome.status}).`,
        body: json(outcome.data),
        bodyTitle: "Réponse JSON",
      };
    case "not_json":
      return {
        ok: false,
        message: `Réponse inattendue : l'API n'a pas renvoyé de JSON (HTTP ${outcome.status}).`,
        body: outcome.text === "" ? null : outcome.text.slice(0, MAX_RAW_BODY) + (outcome.text.length > MAX_RAW_BODY ? "…" : ""),
        bodyTitle: "Réponse brute (début)",
      };
    case "timeout":
      return {
        ok: false,
        message: `L'API n'a pas répondu dans le délai de ${seconds} secondes. Réessayez dans quelques instants.`,
        body: null,
        bodyTitle: "",
      };
    default:
      return {
        ok: false,
        message: "Impossible de joindre le serveur. Vérifiez la connexion réseau puis réessayez.",
        body: null,
        bodyTitle: "",
      };
  }
}
