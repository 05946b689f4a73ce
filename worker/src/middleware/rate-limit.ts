import type { Context, MiddlewareHandler } from "hono";
import { RATE_LIMIT_BINDINGS, type RateLimitName } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { isAdmin } from "./admin";
import { bearerToken } from "./validate-session";

/**
 * The client a limit counts: Cloudflare sets CF-Connecting-IP to the
 * connecting address (a client cannot choose it); locally Miniflare sets the
 * local address, so every local request counts as one client. An IPv6 client
 * counts by its /64: one subscriber usually holds a whole /64 and could
 * otherwise take a fresh address for every request.
 */
export const clientIp = (c: Context<AppEnv>) => clientKey(c.req.header("CF-Connecting-IP") ?? "local");

export function clientKey(address: string): string {
  if (!address.includes(":")) return address;
  const [head = "", tail] = address.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/**
 * Counts one request against the `name` limit for `key` and throws 429 with
 * Retry-After (the limit's period: the binding does not say when its window
 * ends) once it is over. Not limited: a Worker without the binding, and
 * requests carrying an admin token. A failing limiter lets the request
 * through (logged): the limit protects the origin and KV, it must not take
 * the API down with it.
 */
export async function enforceRateLimit(c: Context<AppEnv>, name: RateLimitName, key: string): Promise<void> {
  const limiter = c.env[RATE_LIMIT_BINDINGS[name]];
  if (!limiter) return;
  const token = bearerToken(c);
  if (token !== undefined && (await isAdmin(c.env, token))) return;
  const outcome = await limiter.limit({ key }).catch((error: unknown) => {
    console.error(`rate limiter ${RATE_LIMIT_BINDINGS[name]} failed, request let through: ${String(error)}`);
    return { success: true };
  });
  if (outcome.success) return;
  const seconds = periodOf(c.env.RATE_LIMITS, name);
  throw new ApiError(429, "rate_limited", `too many requests (${name}); retry after ${seconds} s`, { "Retry-After": String(seconds) });
}

/** Middleware form, for a route limited as a whole: per client IP unless `key` says otherwise. */
export function rateLimit(name: RateLimitName, key: (c: Context<AppEnv>) => string | Promise<string> = clientIp): MiddlewareHandler<AppEnv> {
  return async function rateLimit(c, next) {
    await enforceRateLimit(c, name, await key(c));
    await next();
  };
}

function periodOf(raw: string | undefined, name: RateLimitName): number {
  try {
    const period = (JSON.parse(raw ?? "{}") as Record<string, { period?: unknown }>)[name]?.period;
    return typeof period === "number" && period > 0 ? period : 60;
  } catch {
    return 60;
  }
}
