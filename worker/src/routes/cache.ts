import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { ProductParams, PurgeQuery } from "../api-schemas";
import { CACHE_TTL, PRODUCT_ID_PATTERN, ttlFrom } from "../contract";
import { setBounded } from "../bounded-map";
import { openCursor, signCursor } from "../purge-cursor";
import type { AppEnv } from "../env";
import { ApiError, unavailable } from "../errors";
import { Handoff } from "../handoff";
import { keepAlive } from "../keep-alive";
import { requireScope } from "../middleware/admin";
import { clientIp, enforceRateLimit } from "../middleware/rate-limit";
import { check, validate } from "../middleware/validate";
import { json, jsonHeaders, jsonText } from "../respond";
import { cacheStore, type CachedProduct } from "../stores/cache";
import type { Deps } from "../app";

/** What the origin said about one product. */
type OriginAnswer = { kind: "found"; body: string } | { kind: "missing" } | { kind: "failed"; reason: string };

/**
 * After a failed refresh, a product with a stale copy is served STALE without
 * asking the origin again for this long: during an outage, readers would
 * otherwise each wait for the origin's timeout before getting the same copy.
 */
export const ORIGIN_RETRY_AFTER_MS = 10_000;
/** Bound on remembered failures and refreshes, so many distinct ids cannot grow the isolate's memory. */
const MAX_REMEMBERED_FAILURES = 1000;
/** How long a refresh's outcome stays for the requests that were waiting for it (they poll every 10 ms). */
const HANDOFF_KEEP_MS = 1000;

export function cacheRoutes({ kvTimeoutMs, originTimeoutMs, now }: Deps) {
  /**
   * One origin refresh per product at a time in this isolate: concurrent
   * misses take the outcome of the request that is fetching, as a plain value,
   * never its promise (handoff.ts). A claim lapses after the refresh's own
   * deadlines (the origin's, then the KV write's).
   */
  const refreshes = new Handoff<OriginAnswer>(now, {
    claimMs: originTimeoutMs + kvTimeoutMs,
    keepMs: HANDOFF_KEEP_MS,
    maxEntries: MAX_REMEMBERED_FAILURES,
  });
  /** When this isolate may next ask the origin for a product whose refresh failed. */
  const retryAt = new Map<string, number>();

  async function refresh(store: ReturnType<typeof cacheStore>, originUrl: string, id: string, ttlSeconds: number) {
    const answer = await fetchProduct(originUrl, id, originTimeoutMs);
    // The cache is an optimisation: a failed write (already logged) costs one
    // more origin fetch later, whereas failing the request would discard a good answer.
    if (answer.kind === "found") await store.put(id, { body: answer.body, fetchedAt: now(), ttlSeconds }).catch(() => {});
    if (answer.kind === "missing") await store.putMissing(id, now()).catch(() => {});
    return answer;
  }

  return new Hono<AppEnv>()
    // A hot route: one handler, validating inline; a valid id is recognised by
    // the schema's own pattern, anything else gets the schema's 400 (see flags.ts).
    .get("/api/products/:id", async (c) => {
      const id = c.req.param("id");
      if (!PRODUCT_ID_PATTERN.test(id)) check("param", ProductParams, { id });
      // Checked before the cache so a misconfigured deployment shows at once, not when entries expire.
      const originUrl = c.env.ORIGIN_URL;
      if (!originUrl) throw unavailable("the product origin is not configured (ORIGIN_URL is unset)");
      const store = cacheStore(c.env.CACHE, kvTimeoutMs);
      const ttlSeconds = ttlFrom(c.env.CACHE_TTL_SECONDS, CACHE_TTL);
      const stored = await store.get(id, ttlSeconds);
      if (stored && now() < freshUntil(stored)) return stored.missing ? originHasNo(id) : product(stored.body, "HIT");
      // A remembered 404 past its freshness is no copy to serve.
      const cached = stored?.missing ? undefined : stored;
      if (cached && now() < (retryAt.get(id) ?? 0)) return product(cached.body, "STALE");
      // A miss costs an origin fetch and a KV write: limited per client (hits are not).
      await enforceRateLimit(c, "productMisses", clientIp(c));

      // Another request is refreshing it: the stale copy answers meanwhile.
      if (cached && refreshes.busy(id)) return product(cached.body, "STALE");

      // A refresh this request leads completes (and publishes) even if its client leaves.
      const answer = await refreshes.run(id, () => refresh(store, originUrl, id, ttlSeconds), (running) => keepAlive(c, running));
      if (answer.kind === "failed") setBounded(retryAt, id, now() + ORIGIN_RETRY_AFTER_MS, MAX_REMEMBERED_FAILURES);
      else retryAt.delete(id);
      if (answer.kind === "found") return product(answer.body, "MISS");
      if (answer.kind === "missing") return originHasNo(id);
      if (cached) return product(cached.body, "STALE");
      throw new ApiError(502, "origin_error", `the origin could not supply product ${id}: ${answer.reason}`);
    })
    .delete("/api/products/:id/cache", requireScope("cache:purge"), validate("param", ProductParams), async (c) => {
      await cacheStore(c.env.CACHE, kvTimeoutMs).delete(c.req.valid("param").id);
      return json({ invalidated: true });
    })
    // One bounded page per call (a Worker invocation may make 1000 KV operations);
    // the caller repeats with the returned cursor until `complete` (npm run purge does).
    .delete("/api/cache", requireScope("cache:purge"), validate("query", PurgeQuery), async (c) => {
      const { prefix, cursor } = c.req.valid("query");
      // requireScope has admitted the request, so ADMIN_TOKEN is set.
      const secret = c.env.ADMIN_TOKEN!;
      const kvCursor = cursor === undefined ? undefined : await openCursor(secret, prefix, cursor);
      if (cursor !== undefined && kvCursor === undefined) {
        throw new ApiError(400, "invalid_request", "invalid query string: cursor: is not one this API returned for this prefix");
      }
      const page = await cacheStore(c.env.CACHE, kvTimeoutMs).purgePage(prefix, kvCursor);
      if (!page.cursor) return json({ deleted: page.deleted, complete: true });
      return json({ deleted: page.deleted, complete: false, cursor: await signCursor(secret, prefix, page.cursor) });
    });
}

const originHasNo = (id: string): never => {
  throw new ApiError(404, "not_found", `the origin has no product ${id}`);
};

const freshUntil = (entry: CachedProduct) => entry.fetchedAt + entry.ttlSeconds * 1000;

type CacheStatus = "HIT" | "MISS" | "STALE";
/** One header set per X-Cache value, built once per isolate. */
const PRODUCT_HEADERS = Object.fromEntries(
  (["HIT", "MISS", "STALE"] as const).map((status) => [status, jsonHeaders({ "Content-Type": "application/json; charset=utf-8", "X-Cache": status })]),
) as Record<CacheStatus, Readonly<Record<string, string>>>;
const product = (body: string, cache: CacheStatus) => jsonText(body, PRODUCT_HEADERS[cache]);

async function fetchProduct(originUrl: string, id: string, timeoutMs: number): Promise<OriginAnswer> {
  const url = `${originUrl.replace(/\/+$/, "")}/products/${encodeURIComponent(id)}`;
  let status: number;
  let body: string;
  try {
    const res = await fetch(url, { headers: { Accept: "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
    status = res.status;
    body = await res.text();
  } catch (err) {
    if (err instanceof Error && err.name === "TimeoutError") return { kind: "failed", reason: `no answer within ${timeoutMs} ms` };
    // The detail may name internal hosts: it goes to the log, not to the client.
    console.error(`origin fetch for product ${id} failed: ${String(err)}`);
    return { kind: "failed", reason: "it is unreachable" };
  }
  if (status === 404) return { kind: "missing" };
  if (status < 200 || status > 299) return { kind: "failed", reason: `it answered ${status}` };
  try {
    JSON.parse(body);
  } catch {
    return { kind: "failed", reason: "it answered with a body that is not JSON" };
  }
  return { kind: "found", body };
}
