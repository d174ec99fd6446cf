#!/usr/bin/env node
'use strict';
// `chatbridge <command>`: the operator's commands (docs/configuration.md#checking-a-file). It runs the compiled
// code in dist/ (`npm run build`; the container image has only that), and in a source checkout without a build
// the TypeScript sources through ts-node, so the check is always the service's own validation of this version.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const USAGE = 'usage: chatbridge check-config <file>';

function load(module) {
  const built = join(root, 'dist', `${module}.js`);
  if (existsSync(built)) return require(built);
  require('ts-node').register({ transpileOnly: true, project: join(root, 'tsconfig.json') });
  return require(join(root, 'src', `${module}.ts`));
}

const [command, ...args] = process.argv.slice(2);
if (command !== 'check-config') {
  process.stderr.write(`${command === undefined ? '' : `unknown command "${command}"\n`}${USAGE}\n`);
  process.exit(2);
}
require('reflect-metadata');
const { checkConfig } = load('cli/check-config');
process.exitCode = checkConfig(args, process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
