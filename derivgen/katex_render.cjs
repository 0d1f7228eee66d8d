// Pre-renders formulas with KaTeX for derivgen's HTML handouts (driven by derivgen/katex.py).
//
//   node katex_render.cjs /path/to/katex.js
//
// Reads batches from stdin, one JSON line each: [[tex, displayMode], ...]. Answers each batch
// with one JSON line: [{"html": "...", "error": null | "message"}, ...], in the same order.
// A formula KaTeX cannot parse still gets HTML (KaTeX's red error rendering) and its error
// message, so the caller can report it instead of publishing it. One process serves a whole
// build: node and KaTeX start once.
"use strict";

const readline = require("readline");
const katex = require(process.argv[2]);

const OPTIONS = {
  throwOnError: true,
  output: "htmlAndMathml", // MathML for screen readers, HTML for the eye
  strict: "ignore", // CJK text inside \text{} is fine
  trust: false, // statements are untrusted: no \href, \url, \htmlClass, \includegraphics
  maxSize: 50, // em; no giant rules from a hostile statement
  maxExpand: 1000,
};

function render(tex, displayMode) {
  const options = Object.assign({}, OPTIONS, { displayMode: Boolean(displayMode) });
  try {
    return { html: katex.renderToString(String(tex), options), error: null };
  } catch (err) {
    const message = err && err.message ? err.message : String(err);
    let html;
    try {
      html = katex.renderToString(String(tex), Object.assign(options, { throwOnError: false }));
    } catch (again) {
      html = "";
    }
    return { html, error: message };
  }
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let answer;
  try {
    answer = JSON.parse(line).map(([tex, display]) => render(tex, display));
  } catch (err) {
    answer = { fatal: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
