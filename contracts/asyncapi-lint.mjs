// Lints an AsyncAPI document with @asyncapi/parser (the parser and Spectral
// rules the AsyncAPI CLI's `validate` runs): prints every diagnostic and
// exits 1 when one is an error (severity 0) or the document does not parse.
// Usage: node asyncapi-lint.mjs build/asyncapi.json
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), { source: file });
const names = ["error", "warning", "info", "hint"];
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors++;
  const at = d.range ? `${d.range.start.line + 1}:${d.range.start.character + 1}` : "";
  console.log(`${file}:${at} ${names[d.severity] ?? d.severity} ${d.code} ${d.message} (${(d.path || []).join(".")})`);
}
if (!document || errors > 0) {
  console.log(`${errors} error(s)`);
  process.exit(1);
}
console.log(`valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ${document.messages().length} messages, ${diagnostics.length} other diagnostic(s)`);
