import type { Context } from "hono";
import type { AppEnv } from "./env";

/**
 * Work other requests may be waiting on (a shared origin fetch, KV read or
 * session refresh) must finish even if the client that started it goes away:
 * workerd cancels a request's pending I/O when its client disconnects, and the
 * waiters would then wait on a cancelled promise.
 */
export function keepAlive(c: Context<AppEnv>, work: Promise<unknown>) {
  try {
    c.executionCtx.waitUntil(work);
  } catch {
    // No ExecutionContext: the app was called directly (tests, benches), nothing can cancel it.
  }
}
