import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      /** Limiters of the rate-limit tests (vitest.config.ts): 3 per 60 s. */
      TEST_LIMIT_3: RateLimit;
      TEST_LIMIT_3_SECOND: RateLimit;
      /** A test-only namespace holding 5,000 keys for the backup test (vitest.config.ts). */
      TEST_BULK: KVNamespace;
    }
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
