const { existsSync } = require('node:fs');
const path = require('node:path');

/** One jest run for the whole workspace; each package keeps its tests in `test/`. */
const swc = [
  '@swc/jest',
  { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['packages', 'services', 'test']
    .filter((dir) => existsSync(path.join(__dirname, dir)))
    .map((dir) => `<rootDir>/${dir}`),
  testMatch: ['**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': swc },
  // Tests run against workspace sources, so a change in shared needs no rebuild to be tested.
  moduleNameMapper: {
    '^@aisha/([a-z-]+)$': ['<rootDir>/packages/$1/src/index.ts', '<rootDir>/services/$1/src/index.ts'],
  },
  testTimeout: 60_000,
  maxWorkers: 2,
};
