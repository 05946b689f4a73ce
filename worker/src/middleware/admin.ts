import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppEnv, Env } from "../env";
import { ApiError, unavailable } from "../errors";
import { bearerToken } from "./validate-session";

/**
 * Admits a request only with `Authorization: Bearer <ADMIN_TOKEN>` (or
 * ADMIN_TOKEN_PREVIOUS during a rotation), compared in constant time. A Worker without ADMIN_TOKEN answers 503: the admin API
 * is never open.
 */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireAdmin(c, next) {
    if (!c.env.ADMIN_TOKEN) throw unavailable("the admin API is disabled: no ADMIN_TOKEN is configured");
    if (!(await isAdmin(c.env, bearerToken(c)))) {
      throw new ApiError(401, "unauthorized", "missing or wrong admin token", { "WWW-Authenticate": 'Bearer realm="admin"' });
    }
    await next();
  };
}

/**
 * True only when an admin token is configured and `presented` equals it or
 * the previous token (kept during a rotation). Both comparisons always run,
 * in constant time; an unset or empty previous token matches nothing, and
 * without ADMIN_TOKEN the previous one alone admits no one.
 */
export async function isAdmin(env: Pick<Env, "ADMIN_TOKEN" | "ADMIN_TOKEN_PREVIOUS">, presented: string | undefined): Promise<boolean> {
  if (!env.ADMIN_TOKEN || presented === undefined) return false;
  const [current, previous] = await Promise.all([
    timingSafeEqual(env.ADMIN_TOKEN, presented),
    env.ADMIN_TOKEN_PREVIOUS ? timingSafeEqual(env.ADMIN_TOKEN_PREVIOUS, presented) : false,
  ]);
  return current || previous;
}
