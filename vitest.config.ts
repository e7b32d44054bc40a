import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The tests run the built server and CLI (node dist/cli/main.js), as production does; then the console is rebuilt.
    globalSetup: ['test/global-build.ts', 'test/global-setup.ts', 'test/global-postgres.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
