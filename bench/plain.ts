/**
 * Bench-only reference: the benchmark's read routes as one plain `fetch`
 * handler, without a framework, calling the app's own stores, evaluation and
 * responses. App ÷ plain is what Hono costs; plain ÷ fixed-200 or one-get is
 * what our own code costs. Never deployed. Answers only what the bench sends:
 *
 *   GET /sessions/:id, GET /api/features/:name?userId=, GET /api/products/:id (cache hit only)
 */
import * as v from "valibot";
import { CACHE_TTL, FLAG_NAME_PATTERN, PRODUCT_ID_PATTERN, SESSION_ID_PATTERN, sessionView, ttlFrom } from "../worker/src/contract";
import type { Env } from "../worker/src/env";
import { ApiError } from "../worker/src/errors";
import { evaluate } from "../worker/src/flags";
import { json, jsonHeaders, jsonText } from "../worker/src/respond";
import { cacheStore } from "../worker/src/stores/cache";
import { FlagCache, flagStore } from "../worker/src/stores/flags";
import { maxLifetimeSeconds, sessionStore } from "../worker/src/stores/sessions";

const KV_TIMEOUT_MS = 3000;
const flags = new FlagCache(Date.now);
const UserId = v.optional(v.pipe(v.string(), v.maxLength(256)));
const HIT_HEADERS = jsonHeaders({ "Content-Type": "application/json; charset=utf-8", "X-Cache": "HIT" });
const notFound = () => json({ error: "not found", code: "not_found" }, 404);

async function route(request: Request, env: Env): Promise<Response> {
  if (request.method !== "GET") return json({ error: "method not allowed", code: "method_not_allowed" }, 405);
  const url = new URL(request.url);
  const [, first, second, third] = url.pathname.split("/");
  if (first === "sessions" && second !== undefined && third === undefined) {
    if (!SESSION_ID_PATTERN.test(second)) return notFound();
    const session = await sessionStore(env.SESSIONS, KV_TIMEOUT_MS).findLive(second, Date.now(), maxLifetimeSeconds(env));
    return session ? json(sessionView(session)) : notFound();
  }
  if (first === "api" && third !== undefined) {
    const id = decodeURIComponent(third);
    if (second === "features" && FLAG_NAME_PATTERN.test(id)) {
      const userId = v.parse(UserId, url.searchParams.get("userId") ?? undefined);
      const flag = await flags.read(id, () => flagStore(env.CONFIG, KV_TIMEOUT_MS).get(id));
      const resolution = flag ? evaluate(id, flag, userId === undefined ? {} : { targetingKey: userId }) : undefined;
      return json({ name: id, enabled: resolution?.value === true, reason: resolution?.reason ?? "DEFAULT" });
    }
    if (second === "products" && PRODUCT_ID_PATTERN.test(id)) {
      const cached = await cacheStore(env.CACHE, KV_TIMEOUT_MS).get(id, ttlFrom(env.CACHE_TTL_SECONDS, CACHE_TTL));
      if (cached && Date.now() < cached.fetchedAt + cached.ttlSeconds * 1000) return jsonText(cached.body, HIT_HEADERS);
      return json({ error: "the plain reference serves cache hits only", code: "not_found" }, 404);
    }
  }
  return notFound();
}

export default {
  fetch: (request, env) =>
    route(request, env).catch((err: unknown) =>
      err instanceof ApiError ? json({ error: err.message, code: err.code }, err.status) : json({ error: "internal error", code: "internal_error" }, 500),
    ),
} satisfies ExportedHandler<Env>;
