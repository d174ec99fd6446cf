/**
 * `npm run faults`: the fault suite, black-box against the built bridge (`dist/main.js`, so `npm run build` first),
 * the simulators and the test broker. One file per area under test/faults/, one test per hostile input or fault.
 */
const tsJest = ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json', diagnostics: false }];
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
  setupFiles: ['reflect-metadata'],
  globalSetup: '<rootDir>/test/kafka/global-setup.ts',
  globalTeardown: '<rootDir>/test/kafka/global-teardown.ts',
  roots: ['<rootDir>/test/faults'],
  testMatch: ['**/*.fault.ts'],
  // One row at a time: the rows measure memory and latency of one process.
  maxWorkers: 1,
  testTimeout: 120000,
};
