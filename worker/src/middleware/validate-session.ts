import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { SESSION_ID_PATTERN } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { maxLifetimeSeconds, sessionStore } from "../stores/sessions";

export interface ValidateSessionOptions {
  /** Deadline of the session read. */
  kvTimeoutMs?: number;
  now?: () => number;
}

/** The cookie a browser client carries its session id in. */
export const SESSION_COOKIE = "session";

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(c: Context): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(c.req.header("Authorization") ?? "");
  return match?.[1];
}

/** The session id a request presents: a bearer token first, else the `session` cookie. */
export const presentedSessionId = (c: Context) => bearerToken(c) ?? getCookie(c, SESSION_COOKIE);

/**
 * Admits a request only with a live session (not expired, not past its
 * absolute lifetime, not revoked), presented as
 * `Authorization: Bearer <sessionId>` or a `session` cookie, and sets it as
 * `c.var.session`. Anything else is a 401; an id that cannot be a session id
 * is refused without a KV read.
 */
export function validateSession(options: ValidateSessionOptions = {}): MiddlewareHandler<AppEnv> {
  const { kvTimeoutMs = 3000, now = Date.now } = options;
  return async function validateSession(c, next) {
    const sessionId = presentedSessionId(c);
    const session =
      sessionId !== undefined && SESSION_ID_PATTERN.test(sessionId)
        ? await sessionStore(c.env.SESSIONS, kvTimeoutMs).findLive(sessionId, now(), maxLifetimeSeconds(c.env))
        : undefined;
    if (!session || sessionId === undefined) {
      throw new ApiError(401, "unauthorized", "a valid session is required (Authorization: Bearer <sessionId> or a session cookie)", {
        "WWW-Authenticate": 'Bearer realm="session"',
      });
    }
    c.set("session", { ...session, sessionId });
    await next();
  };
}
