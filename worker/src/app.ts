import type { MiddlewareHandler } from "hono";
import { Hono } from "hono/tiny";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./env";
import { MAX_BODY_BYTES } from "./contract";
import { ApiError, errorResponse } from "./errors";
import { withSecurityHeaders } from "./respond";
import { backupRoutes } from "./routes/backups";
import { cacheRoutes } from "./routes/cache";
import { flagRoutes } from "./routes/flags";
import { healthRoutes } from "./routes/health";
import { openApiRoutes } from "./routes/openapi";
import { sessionRoutes } from "./routes/sessions";
import { userSessionRoutes } from "./routes/user-sessions";
import { REVOKE_PAGE_SIZE } from "./stores/sessions";
import { DEFAULT_OPS_BUDGET } from "./backup/ops";

export interface AppOptions {
  /** Deadline for one origin fetch, headers and body. */
  originTimeoutMs?: number;
  /** Deadline for one KV operation; past it the request answers 503. */
  kvTimeoutMs?: number;
  /** The clock, in epoch milliseconds (tests move it to expire sessions and cache entries). */
  now?: () => number;
  /** Sessions per sign-out-everywhere call; the default keeps a call under KV's 1000 operations (tests use small pages). */
  revokePageSize?: number;
  /** KV and R2 operations one backup or restore call may make; the default keeps a call under KV's 1000 (tests use small budgets). */
  backupOpsBudget?: number;
}
export type Deps = Required<AppOptions>;

export { MAX_BODY_BYTES } from "./contract";

/**
 * Methods whose requests may carry a body on a registered route. GET and HEAD
 * requests have none, so the body limit is not a layer on the read routes;
 * requests with any other method reach `notFound`, which applies it too.
 */
const BODY_METHODS = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * The Worker's Hono app. Bindings are read from `c.env` on every request, never
 * captured, so a caller may pass wrapped KV bindings; in-isolate state (the
 * flag cache, origin fetches in flight) belongs to this one instance.
 *
 * No middleware runs on every request (bench/analysis.md: each layer is an
 * async step in Hono's compose, and on the hot routes they cost more than the
 * route itself). A route with a single handler takes Hono's dispatch without
 * compose; each protection sits where it applies instead:
 * - security headers: in the responses of ./respond, and set by `fetch` below
 *   on any other response, so routes added later with `c.json` get them too;
 * - body limit: on methods that carry a body, and in `notFound`;
 * - 405 with Allow: in `notFound`, the only place an unmatched method ends up.
 */
export function createApp(options: AppOptions = {}) {
  const deps: Deps = { originTimeoutMs: 5000, kvTimeoutMs: 3000, now: Date.now, revokePageSize: REVOKE_PAGE_SIZE, backupOpsBudget: DEFAULT_OPS_BUDGET, ...options };
  const app = new Hono<AppEnv>();
  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
    },
  });
  app.on(BODY_METHODS, "*", limitBody);
  app.route("/", healthRoutes());
  app.route("/", sessionRoutes(deps));
  app.route("/", userSessionRoutes(deps));
  app.route("/", cacheRoutes(deps));
  app.route("/", flagRoutes(deps));
  app.route("/", backupRoutes(deps));
  app.route("/", openApiRoutes());

  const allowedMethods = allowedMethodsOf(app, limitBody);
  app.notFound(async (c) => {
    // Any method, any path: a body over the limit is a 413 before anything else.
    await limitBody(c, async () => {});
    const allowed = allowedMethods(c.req.path);
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      throw new ApiError(405, "method_not_allowed", `${c.req.method} is not allowed here`, { Allow: allowed.join(", ") });
    }
    throw new ApiError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`);
  });
  app.onError(errorResponse);

  const dispatch = app.fetch;
  // A handler that answers synchronously (a cached flag) stays synchronous: no promise, no microtask.
  app.fetch = (request, env, executionCtx) => {
    const res = dispatch(request, env, executionCtx);
    return res instanceof Promise ? res.then(withSecurityHeaders) : withSecurityHeaders(res);
  };
  return app;
}

/**
 * The methods registered for a path (GET implies HEAD), from the app's own
 * router, leaving out `middleware` (registered for every path): read only on
 * the not-found path, so matched requests pay nothing for it.
 */
function allowedMethodsOf(app: Hono<AppEnv>, middleware: MiddlewareHandler<AppEnv>) {
  let methods: string[] | undefined;
  return (path: string): string[] => {
    methods ??= [...new Set(app.routes.filter((r) => r.handler !== middleware && r.method !== "ALL").map((r) => r.method))];
    const allowed = methods.filter((method) =>
      app.router.match(method, path)[0].some(([[handler, route]]) => handler !== middleware && route.method === method),
    );
    if (allowed.includes("GET")) allowed.splice(allowed.indexOf("GET") + 1, 0, "HEAD");
    return allowed;
  };
}
