import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import type { AppEnv } from "../env";
import { ApiError, unavailable } from "../errors";
import { bearerToken } from "./validate-session";

/**
 * Admits a request only with `Authorization: Bearer <ADMIN_TOKEN>`, compared
 * in constant time. A Worker without ADMIN_TOKEN answers 503: the admin API
 * is never open.
 */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireAdmin(c, next) {
    if (!c.env.ADMIN_TOKEN) throw unavailable("the admin API is disabled: no ADMIN_TOKEN is configured");
    if (!(await isAdmin(c.env.ADMIN_TOKEN, bearerToken(c)))) {
      throw new ApiError(401, "unauthorized", "missing or wrong admin token", { "WWW-Authenticate": 'Bearer realm="admin"' });
    }
    await next();
  };
}

/** True only when an admin token is configured and `presented` equals it. */
export async function isAdmin(expected: string | undefined, presented: string | undefined): Promise<boolean> {
  return !!expected && presented !== undefined && (await timingSafeEqual(expected, presented));
}
