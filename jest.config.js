// Plain JavaScript: a jest.config.ts is compiled (and type-checked) by ts-node on every
// Jest start, some 4 CPU seconds before the first suite runs.
/** @type {import('jest').Config} */
const config = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  // Only a hang bound: no test depends on the machine's speed, and a loaded CI machine can be several times slower.
  testTimeout: 300_000,
  // Most suites wait on child processes, a node or sockets more than they compute: two at once use both cores.
  maxWorkers: 2,
  // Slowest suites first also in a fresh clone, which has no timings cached (see the file).
  testSequencer: '<rootDir>/tools/jest-sequencer.cjs',
};

export default config;
