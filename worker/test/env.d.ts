import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      /** A test-only namespace holding 5,000 keys for the backup test (vitest.config.ts). */
      TEST_BULK: KVNamespace;
    }
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
