import { Hono } from "hono/tiny";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "./env";
import { ApiError, errorResponse } from "./errors";
import { cacheRoutes } from "./routes/cache";
import { flagRoutes } from "./routes/flags";
import { healthRoutes } from "./routes/health";
import { openApiRoutes } from "./routes/openapi";
import { sessionRoutes } from "./routes/sessions";
import { userSessionRoutes } from "./routes/user-sessions";
import { REVOKE_PAGE_SIZE } from "./stores/sessions";

export interface AppOptions {
  /** Deadline for one origin fetch, headers and body. */
  originTimeoutMs?: number;
  /** Deadline for one KV operation; past it the request answers 503. */
  kvTimeoutMs?: number;
  /** The clock, in epoch milliseconds (tests move it to expire sessions and cache entries). */
  now?: () => number;
  /** Sessions per sign-out-everywhere call; the default keeps a call under KV's 1000 operations (tests use small pages). */
  revokePageSize?: number;
}
export type Deps = Required<AppOptions>;

/** Any request body larger than this is refused with 413. */
export const MAX_BODY_BYTES = 16 * 1024;

/** secureHeaders' options: nosniff, HSTS and no-referrer; the rest guard HTML documents, which this API never serves. */
const JSON_API_HEADERS = {
  xContentTypeOptions: true,
  strictTransportSecurity: true,
  referrerPolicy: true,
  crossOriginEmbedderPolicy: false,
  crossOriginResourcePolicy: false,
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xFrameOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  // Nothing here sets X-Powered-By; removing it is one more runtime call per response.
  removePoweredBy: false,
};

/**
 * The Worker's Hono app. Bindings are read from `c.env` on every request, never
 * captured, so a caller may pass wrapped KV bindings; in-isolate state (the
 * flag cache, origin fetches in flight) belongs to this one instance.
 */
export function createApp(options: AppOptions = {}) {
  const deps: Deps = { originTimeoutMs: 5000, kvTimeoutMs: 3000, now: Date.now, revokePageSize: REVOKE_PAGE_SIZE, ...options };
  const app = new Hono<AppEnv>();
  app.use(
    // Only the headers that matter for a JSON API: each header set is a call
    // into the runtime, and the defaults (a dozen, aimed at HTML documents)
    // cost about a quarter of the runtime's ceiling on a hot route (BENCHMARKS.md).
    secureHeaders(JSON_API_HEADERS),
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError(413, "payload_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
      },
    }),
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, allowed) => {
        throw new ApiError(405, "method_not_allowed", `${c.req.method} is not allowed here`, { Allow: allowed.join(", ") });
      },
    }),
  );
  app.route("/", healthRoutes());
  app.route("/", sessionRoutes(deps));
  app.route("/", userSessionRoutes(deps));
  app.route("/", cacheRoutes(deps));
  app.route("/", flagRoutes(deps));
  app.route("/", openApiRoutes());
  app.notFound((c) => errorResponse(new ApiError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`), c));
  app.onError(errorResponse);
  return app;
}
