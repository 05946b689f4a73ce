import type { Context, MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { ADMIN_SCOPES, type AdminScope, type AdminToken, parseAdminTokens } from "../contract";
import type { AppEnv, Env } from "../env";
import { ApiError, unavailable } from "../errors";
import { bearerToken, presentedSessionId } from "./validate-session";

type AdminEnv = Pick<Env, "ADMIN_TOKEN" | "ADMIN_TOKEN_PREVIOUS" | "ADMIN_TOKENS">;

/** A route's admin middleware carries the scope it requires, so tests read each route's scope from the app's route table. */
export type ScopedMiddleware = MiddlewareHandler<AppEnv> & { readonly scope: AdminScope };

const ALL_SCOPES: ReadonlySet<AdminScope> = new Set(ADMIN_SCOPES);

/** ADMIN_TOKENS parsed once per isolate per value: plain data only. */
let parsedTokens: { raw: string; result: ReturnType<typeof parseAdminTokens> } | undefined;
function namedTokens(raw: string | undefined) {
  if (raw === undefined) return { tokens: [] as AdminToken[] };
  if (parsedTokens?.raw !== raw) parsedTokens = { raw, result: parseAdminTokens(raw) };
  return parsedTokens.result;
}

/**
 * The scopes `presented` holds, or undefined when it is no admin token (or
 * none is configured). ADMIN_TOKEN and ADMIN_TOKEN_PREVIOUS hold every scope;
 * a named token of ADMIN_TOKENS its own. Every comparison runs, in constant
 * time; an empty token matches nothing, and without ADMIN_TOKEN the admin API
 * is closed. A malformed ADMIN_TOKENS throws a 503 (`strict`) or admits by
 * ADMIN_TOKEN alone.
 */
export async function adminScopes(env: AdminEnv, presented: string | undefined, strict = true): Promise<ReadonlySet<AdminScope> | undefined> {
  if (!env.ADMIN_TOKEN || presented === undefined) return undefined;
  const named = namedTokens(env.ADMIN_TOKENS);
  if ("error" in named && strict) throw unavailable(`the admin API is disabled: ADMIN_TOKENS is invalid (${named.error})`);
  const tokens = "tokens" in named ? named.tokens : [];
  const [current, previous, ...matches] = await Promise.all([
    timingSafeEqual(env.ADMIN_TOKEN, presented),
    env.ADMIN_TOKEN_PREVIOUS ? timingSafeEqual(env.ADMIN_TOKEN_PREVIOUS, presented) : false,
    ...tokens.map((t) => timingSafeEqual(t.token, presented)),
  ]);
  if (current || previous) return ALL_SCOPES;
  const match = tokens.find((_, i) => matches[i]);
  return match && new Set(match.scopes);
}

/** True when `presented` is any admin token (rate limits do not apply to admins); never throws. */
export const isAdmin = async (env: AdminEnv, presented: string | undefined) => (await adminScopes(env, presented, false)) !== undefined;

const unauthorized = (message: string, realm: string) => new ApiError(401, "unauthorized", message, { "WWW-Authenticate": `Bearer realm="${realm}"` });
const insufficientScope = (scope: AdminScope) =>
  new ApiError(403, "insufficient_scope", `this token lacks the scope ${scope}`, {
    "WWW-Authenticate": `Bearer error="insufficient_scope", scope="${scope}"`,
  });

/**
 * Admits a request only with `Authorization: Bearer <token>` of an admin
 * token holding `scope`: 401 without one, 403 `insufficient_scope` with one
 * that lacks it (RFC 6750 §3.1). A Worker without ADMIN_TOKEN answers 503:
 * the admin API is never open.
 */
export function requireScope(scope: AdminScope): ScopedMiddleware {
  const requireScope: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (!c.env.ADMIN_TOKEN) throw unavailable("the admin API is disabled: no ADMIN_TOKEN is configured");
    const scopes = await adminScopes(c.env, bearerToken(c));
    if (!scopes) throw unauthorized("missing or wrong admin token", "admin");
    if (!scopes.has(scope)) throw insufficientScope(scope);
    await next();
  };
  return Object.assign(requireScope, { scope });
}

/**
 * Admits the session named by the `:id` path parameter (as bearer token or
 * cookie), or an admin token holding `scope`.
 */
export function requireSelfOrScope(scope: AdminScope, action: string): ScopedMiddleware {
  const requireSelfOrScope: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (!isSelf(c)) {
      const scopes = await adminScopes(c.env, bearerToken(c));
      if (!scopes) throw unauthorized(`present the admin token or the session itself to ${action} a session`, "session");
      if (!scopes.has(scope)) throw insufficientScope(scope);
    }
    await next();
  };
  return Object.assign(requireSelfOrScope, { scope });
}

const isSelf = (c: Context<AppEnv>) => presentedSessionId(c) === c.req.param("id");
