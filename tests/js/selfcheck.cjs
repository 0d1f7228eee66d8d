// Runs derivgen's self-check (derivgen/static/derivgen-check.js) in node, for tests/test_selfcheck.py:
// reads {"math": path of math.js, "cases": [{"data", "messages", "answers": [...]}]} on stdin,
// prints [[verdict, ...], ...] as JSON.
"use strict";
const path = require("path");
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  const checker = require(path.resolve(__dirname, "../../derivgen/static/derivgen-check.js"))(require(request.math));
  const out = request.cases.map((c) => c.answers.map((a) => checker.check(a, c.data, c.messages)));
  process.stdout.write(JSON.stringify(out));
});
