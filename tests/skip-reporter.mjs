// node:test reporter: one JSON line per skipped or todo test, for scripts/skip_gate.py
// (scripts/lib.sh node_tests runs it beside the spec reporter).
export default async function* skips(source) {
  for await (const { type, data } of source) {
    if (type !== "test:pass" && type !== "test:fail") continue;
    const reason = data.skip ?? data.todo;
    if (reason === undefined || reason === false) continue;
    const label = reason === true ? (data.skip ? "SKIP" : "TODO") : String(reason);
    yield `${JSON.stringify({ runner: "node", id: data.name, reason: label })}\n`;
  }
}
