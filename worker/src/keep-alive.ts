import type { Context } from "hono";
import type { AppEnv } from "./env";

/**
 * A request's own work whose outcome other requests take (a product refresh or
 * a session refresh, handed over as a plain value by handoff.ts) must finish
 * even if that request's client goes away: workerd cancels a request's pending
 * I/O when its client disconnects, and the others would wait for the claim to
 * lapse. Only the request that started the work ever awaits it.
 */
export function keepAlive(c: Context<AppEnv>, work: Promise<unknown>) {
  try {
    c.executionCtx.waitUntil(work);
  } catch {
    // No ExecutionContext: the app was called directly (tests, benches), nothing can cancel it.
  }
}
