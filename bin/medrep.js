#!/usr/bin/env node
// Entry point of the `medrep` command; the CLI lives in cli/ (compiled to dist/).
require('../dist/cli/index.js').main(process.argv.slice(2));
