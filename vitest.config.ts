import { defineConfig } from 'vitest/config';

// Unit tests (test/unit) are fast and need no root; integration tests (test/integration) run
// real cells as root with real skopeo, umoci, unshare and qemu, and start their own registry.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // Integration files each start servers and cells; two at a time suits a 2-core machine.
    maxWorkers: 2,
  },
});
