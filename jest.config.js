/** Jest: unit specs live next to the code (src/**), integration and e2e specs under test/. */
// transpile-only: `npm run lint` (tsc --noEmit) is the type check; tests stay fast.
const tsJest = ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json', diagnostics: false }];
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
  // As in main.ts: decorator metadata must exist before any decorated class loads.
  setupFiles: ['reflect-metadata'],
};
module.exports = {
  // One shared test broker (librdkafka mock cluster) per run; tests that break Kafka start their own.
  globalSetup: '<rootDir>/test/kafka/global-setup.ts',
  globalTeardown: '<rootDir>/test/kafka/global-teardown.ts',
  maxWorkers: 2,
  testTimeout: 60000,
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/src'], testMatch: ['**/*.spec.ts'] },
    { ...common, displayName: 'integration', roots: ['<rootDir>/test'], testMatch: ['**/*.spec.ts'] },
  ],
};
