#!/usr/bin/env node
// Entry point of the `medrep` command; the CLI lives in pipelines/cli.ts (compiled to dist/).
require('../dist/pipelines/cli.js').main(process.argv.slice(2));
