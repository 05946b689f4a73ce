import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      /** Limiters of the rate-limit tests (vitest.config.ts): 3 per 60 s. */
      TEST_LIMIT_3: RateLimit;
      TEST_LIMIT_3_SECOND: RateLimit;
    }
    interface GlobalProps {
      mainModule: typeof import("../src/index");
    }
  }
}
