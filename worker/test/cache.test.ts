import { createExecutionContext, reset, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../src/app";
import { ORIGIN_RETRY_AFTER_MS } from "../src/routes/cache";
import { CACHE_STALE_SECONDS, NEGATIVE_CACHE_TTL_SECONDS, PRODUCT_ID_PATTERN, productKey } from "../src/contract";
import { admin, appClient, countingKv, errorOf, type OriginReply, stubOrigin, withFaults } from "./helpers";

// The origin is stubbed by spying on this isolate's fetch, so requests go through an app
// created here rather than through exports.default, whose module has its own globals.
let call: ReturnType<typeof appClient>;
beforeEach(async () => {
  await reset();
  call = appClient();
});
afterEach(() => vi.restoreAllMocks());

const productJson = (name: string) => Response.json({ id: "p1", name });

/** A clock the test moves by hand. */
function clock(start = Date.now()) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("GET /api/products/:id", () => {
  it("fetches a miss from ${ORIGIN_URL}/products/:id, stores it, and serves the copy as a HIT", async () => {
    const { urls } = stubOrigin(productJson("lamp"));
    const miss = await call("/api/products/p1");
    expect(miss.status).toBe(200);
    expect(miss.headers.get("X-Cache")).toBe("MISS");
    expect(miss.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await miss.json()).toEqual({ id: "p1", name: "lamp" });

    const hit = await call("/api/products/p1");
    expect(hit.headers.get("X-Cache")).toBe("HIT");
    expect(await hit.json()).toEqual({ id: "p1", name: "lamp" });
    expect(urls).toEqual(["https://origin.test/products/p1"]);
  });

  it("stores the body with its fetch time and TTL as metadata, kept in KV for the TTL plus the stale window", async () => {
    stubOrigin(productJson("lamp"));
    const before = Date.now();
    await call("/api/products/p1");
    const { value, metadata } = await env.CACHE.getWithMetadata<{ fetchedAt: number; ttlSeconds: number }>(productKey("p1"));
    expect(JSON.parse(value ?? "")).toEqual({ id: "p1", name: "lamp" });
    expect(metadata?.ttlSeconds).toBe(300);
    expect(metadata?.fetchedAt).toBeGreaterThanOrEqual(before);
    const [key] = (await env.CACHE.list()).keys;
    expect(key?.expiration).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 300 + CACHE_STALE_SECONDS - 1);
    expect(key?.expiration).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 300 + CACHE_STALE_SECONDS + 1);
  });

  it("answers a hit with exactly one KV read and no origin fetch", async () => {
    stubOrigin(productJson("lamp"));
    await call("/api/products/p1");
    const { urls } = stubOrigin(productJson("other"));
    const { kv, calls } = countingKv(env.CACHE);
    const res = await appClient({}, { CACHE: kv })("/api/products/p1");
    expect(res.headers.get("X-Cache")).toBe("HIT");
    expect(calls).toEqual(["getWithMetadata product:p1"]);
    expect(urls).toEqual([]);
  });

  it("reads a product with KV's cacheTtl set to its freshness window, CACHE_TTL_SECONDS", async () => {
    stubOrigin(productJson("lamp"));
    const { kv, options } = countingKv(env.CACHE);
    await appClient({}, { CACHE: kv })("/api/products/p1");
    await appClient({}, { CACHE: kv, CACHE_TTL_SECONDS: "120" })("/api/products/p1");
    expect(options[0]).toEqual({ type: "text", cacheTtl: 300 });
    expect(options.at(-1)).toEqual({ type: "text", cacheTtl: 120 });
  });

  it("takes the TTL from CACHE_TTL_SECONDS but never below KV's 60 s minimum", async () => {
    stubOrigin(productJson("lamp"));
    await appClient({}, { CACHE_TTL_SECONDS: "120" })("/api/products/a");
    await appClient({}, { CACHE_TTL_SECONDS: "10" })("/api/products/b");
    const ttl = async (id: string) => (await env.CACHE.getWithMetadata<{ ttlSeconds: number }>(productKey(id))).metadata?.ttlSeconds;
    expect(await ttl("a")).toBe(120);
    expect(await ttl("b")).toBe(60);
  });

  it("refetches once the copy is older than the TTL", async () => {
    const time = clock();
    const request = appClient({ now: time.now });
    const { urls } = stubOrigin(productJson("v1"), productJson("v2"));
    await request("/api/products/p1");
    time.advance(299_000);
    expect((await request("/api/products/p1")).headers.get("X-Cache")).toBe("HIT");
    time.advance(2_000);
    const res = await request("/api/products/p1");
    expect(res.headers.get("X-Cache")).toBe("MISS");
    expect(await res.json()).toEqual({ id: "p1", name: "v2" });
    expect(urls).toHaveLength(2);
  });

  it.each<[string, OriginReply]>([
    ["a 5xx", new Response("down", { status: 503 })],
    ["a network error", new TypeError("connection refused")],
    ["a timeout", "hang"],
    ["a body that is not JSON", new Response("<html>", { status: 200 })],
  ])("serves the stale copy as STALE when the origin fails with %s", async (_, failure) => {
    const time = clock();
    const request = appClient({ now: time.now, originTimeoutMs: 50 });
    stubOrigin(productJson("old"), failure);
    await request("/api/products/p1");
    time.advance(301_000);
    const res = await request("/api/products/p1");
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Cache")).toBe("STALE");
    expect(await res.json()).toEqual({ id: "p1", name: "old" });
  });

  it("serves the stale copy without asking a failing origin again for a while, then retries it", async () => {
    const time = clock();
    const request = appClient({ now: time.now, originTimeoutMs: 50 });
    const { urls } = stubOrigin(productJson("old"), "hang", "hang", productJson("new"));
    await request("/api/products/p1");
    time.advance(301_000);
    expect((await request("/api/products/p1")).headers.get("X-Cache")).toBe("STALE");
    expect(urls).toHaveLength(2);

    // Within the back-off, readers get the copy at once instead of each waiting for the origin's timeout.
    time.advance(ORIGIN_RETRY_AFTER_MS - 1);
    expect((await request("/api/products/p1")).headers.get("X-Cache")).toBe("STALE");
    expect(urls).toHaveLength(2);

    time.advance(1);
    expect((await request("/api/products/p1")).headers.get("X-Cache")).toBe("STALE");
    expect(urls).toHaveLength(3);
    time.advance(ORIGIN_RETRY_AFTER_MS);
    const fresh = await request("/api/products/p1");
    expect(fresh.headers.get("X-Cache")).toBe("MISS");
    expect(await fresh.json()).toEqual({ id: "p1", name: "new" });
  });

  it.each<[string, OriginReply, string]>([
    ["a 5xx", new Response("down", { status: 500 }), "answered 500"],
    ["a 4xx other than 404", new Response("no", { status: 403 }), "answered 403"],
    ["a network error", new TypeError("connection refused"), "unreachable"],
    ["a timeout", "hang", "no answer within 50 ms"],
    ["a body that is not JSON", new Response("<html>", { status: 200 }), "not JSON"],
  ])("answers 502 origin_error, caching nothing, when the origin fails with %s and there is no copy", async (_, failure, reason) => {
    stubOrigin(failure);
    const error = await errorOf(await appClient({ originTimeoutMs: 50 })("/api/products/p1"));
    expect(error).toMatchObject({ status: 502, code: "origin_error" });
    expect(error.error).toContain(reason);
    expect(error.error).not.toContain("connection refused"); // network detail stays in the log
    expect((await env.CACHE.list()).keys).toEqual([]);
  });

  it("answers 404 for a product the origin does not have, drops a stale copy and remembers the 404 for a minute (negative caching)", async () => {
    const time = clock();
    const request = appClient({ now: time.now });
    const { urls } = stubOrigin(productJson("old"), new Response("gone", { status: 404 }));
    await request("/api/products/p1");
    time.advance(301_000);
    expect(await errorOf(await request("/api/products/p1"))).toMatchObject({ status: 404, code: "not_found" });
    const { value, metadata } = await env.CACHE.getWithMetadata(productKey("p1"));
    expect({ value, metadata }).toEqual({ value: "", metadata: { fetchedAt: time.now(), ttlSeconds: NEGATIVE_CACHE_TTL_SECONDS, missing: true } });
    // Repeated requests for the unknown id are answered from the remembered 404, without the origin.
    for (let i = 0; i < 5; i++) expect(await errorOf(await request("/api/products/p1"))).toMatchObject({ status: 404, code: "not_found" });
    expect(urls).toHaveLength(2);
    // Past the minute the origin is asked again (it may have the product by now).
    time.advance(NEGATIVE_CACHE_TTL_SECONDS * 1000 + 1);
    expect((await request("/api/products/p1")).status).toBe(404);
    expect(urls).toHaveLength(3);
  });

  it("answers a remembered 404 past its minute with 502, not an empty product, when the origin then fails", async () => {
    const time = clock();
    const request = appClient({ now: time.now });
    const { urls } = stubOrigin(new Response("gone", { status: 404 }), new Response("down", { status: 500 }));
    expect((await request("/api/products/p1")).status).toBe(404);
    time.advance(NEGATIVE_CACHE_TTL_SECONDS * 1000 + 1);
    expect(await errorOf(await request("/api/products/p1"))).toMatchObject({ status: 502, code: "origin_error" });
    expect(urls).toHaveLength(2);
  });

  it("shares one origin fetch and one KV write among concurrent misses for the same product", async () => {
    const { urls } = stubOrigin(productJson("lamp"));
    vi.mocked(globalThis.fetch).mockImplementation(async (input) => {
      urls.push(String(input));
      await new Promise((resolve) => setTimeout(resolve, 100));
      return productJson("lamp");
    });
    const { kv, calls } = countingKv(env.CACHE);
    const request = appClient({}, { CACHE: kv });
    const responses = await Promise.all(Array.from({ length: 10 }, () => request("/api/products/p1")));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(await Promise.all(responses.map((r) => r.json()))).toEqual(Array(10).fill({ id: "p1", name: "lamp" }));
    expect(urls).toHaveLength(1);
    expect(calls.filter((c) => c.startsWith("put"))).toHaveLength(1);
  });

  it("keeps the runtime working on a refresh other requests may share, even if its own client leaves", async () => {
    stubOrigin(productJson("lamp"));
    const ctx = createExecutionContext();
    const waitUntil = vi.spyOn(ctx, "waitUntil");
    const res = await createApp().fetch(new Request("http://worker.test/api/products/p1"), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(res.headers.get("X-Cache")).toBe("MISS");
    expect(waitUntil).toHaveBeenCalledTimes(1);
  });

  it("still serves the origin's answer as a MISS when the cache write fails", async () => {
    stubOrigin(productJson("lamp"));
    const failingPut = Object.assign(Object.create(env.CACHE), {
      getWithMetadata: env.CACHE.getWithMetadata.bind(env.CACHE),
      put: () => Promise.reject(new Error("KV PUT failed: 500 Internal Server Error")),
    }) as KVNamespace;
    const res = await appClient({}, { CACHE: failingPut })("/api/products/p1");
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Cache")).toBe("MISS");
  });

  it("treats a stored copy without valid metadata as a miss", async () => {
    // fetchedAt as a string: trusted as is, it would make the copy look fresh.
    await env.CACHE.put(productKey("p1"), JSON.stringify({ name: "corrupt" }), { metadata: { fetchedAt: String(Date.now()), ttlSeconds: 300 } });
    stubOrigin(productJson("lamp"));
    const res = await call("/api/products/p1");
    expect(res.headers.get("X-Cache")).toBe("MISS");
    expect(await res.json()).toEqual({ id: "p1", name: "lamp" });
  });

  it("joins the origin URL safely, keeping its path and encoding the id", async () => {
    const { urls } = stubOrigin(productJson("lamp"));
    await appClient({}, { ORIGIN_URL: "https://origin.test/v1/" })("/api/products/sku:1.a_b-c");
    expect(urls).toEqual(["https://origin.test/v1/products/sku%3A1.a_b-c"]);
  });

  it.each([
    ["longer than 128 characters", "a".repeat(129)],
    ["with a slash", "a%2Fb"],
    ["with a space", "a%20b"],
    ["with a character outside [A-Za-z0-9_.:-]", "a*b"],
  ])("answers 400 invalid_request naming the id, without fetching, for an id %s", async (_, id) => {
    const { urls } = stubOrigin(productJson("lamp"));
    const error = await errorOf(await call(`/api/products/${id}`));
    expect(error).toMatchObject({ status: 400, code: "invalid_request" });
    expect(error.error).toContain("id:");
    expect(urls).toEqual([]);
  });

  it("refuses . and .. as product ids, so an id can never climb the origin's path", () => {
    // URL parsing already folds such segments away before routing; the pattern is the second line.
    expect(["..", ".", "a..b", ".a"].map((id) => PRODUCT_ID_PATTERN.test(id))).toEqual([false, false, true, true]);
  });

  it("answers 503 unavailable when ORIGIN_URL is not configured", async () => {
    const { urls } = stubOrigin(productJson("lamp"));
    const res = await appClient({}, { ORIGIN_URL: undefined })("/api/products/p1");
    expect(res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(await errorOf(res)).toMatchObject({ status: 503, code: "unavailable" });
    expect(urls).toEqual([]);
  });
});

describe("DELETE /api/products/:id/cache", () => {
  it("drops the cached copy so the next read goes to the origin", async () => {
    const { urls } = stubOrigin(productJson("lamp"));
    await call("/api/products/p1");
    const res = await call("/api/products/p1/cache", { method: "DELETE", headers: admin });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: true });
    expect(await env.CACHE.get(productKey("p1"))).toBeNull();
    expect((await call("/api/products/p1")).headers.get("X-Cache")).toBe("MISS");
    expect(urls).toHaveLength(2);
  });

  it("answers 401 without the admin token and keeps the copy", async () => {
    stubOrigin(productJson("lamp"));
    await call("/api/products/p1");
    const res = await call("/api/products/p1/cache", { method: "DELETE" });
    expect(await errorOf(res)).toMatchObject({ status: 401, code: "unauthorized" });
    expect(await env.CACHE.get(productKey("p1"))).not.toBeNull();
  });
});

describe("DELETE /api/cache?prefix=", () => {
  it("purges 2500 keys in pages of at most 1000 KV operations, following the cursor, and spares other prefixes", async () => {
    const ids = Array.from({ length: 2500 }, (_, i) => `sku-${String(i).padStart(4, "0")}`);
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(ids.slice(i, i + 100).map((id) => env.CACHE.put(productKey(id), "{}")));
    }
    await env.CACHE.put(productKey("other-1"), "{}");

    const pages: { deleted: number; complete: boolean; cursor?: string }[] = [];
    let cursor: string | undefined;
    do {
      const { kv, calls } = countingKv(env.CACHE);
      const query = new URLSearchParams({ prefix: productKey("sku-"), ...(cursor ? { cursor } : {}) });
      const res = await appClient({}, { CACHE: kv })(`/api/cache?${query}`, { method: "DELETE", headers: admin });
      expect(res.status).toBe(200);
      const page = await res.json<{ deleted: number; complete: boolean; cursor?: string }>();
      expect(calls.length).toBeLessThanOrEqual(1000);
      expect(calls.length).toBe(page.deleted + 1);
      // The page continues where the previous one stopped (KV list results lag deletes at the edge).
      // The API's cursor is KV's, signed (see the cursor tests below).
      expect(JSON.parse(calls[0]?.replace(/^list /, "") ?? "").cursor).toBe(cursor?.slice(0, cursor.lastIndexOf(".")));
      pages.push(page);
      cursor = page.cursor;
    } while (!pages.at(-1)?.complete && pages.length < 10);

    expect(pages.map((p) => p.complete)).toEqual([false, false, true]);
    expect(pages.reduce((sum, p) => sum + p.deleted, 0)).toBe(2500);
    expect(pages.at(-1)?.cursor).toBeUndefined();
    expect((await env.CACHE.list()).keys.map((k) => k.name)).toEqual([productKey("other-1")]);
  }, 30_000);

  it("reports complete with nothing to delete", async () => {
    const res = await call("/api/cache?prefix=product:none", { method: "DELETE", headers: admin });
    expect(await res.json()).toEqual({ deleted: 0, complete: true });
  });

  it.each([
    ["missing", "", "prefix: is required"],
    ["empty", "?prefix=", "prefix: must not be empty"],
  ])("answers 400 invalid_request naming prefix when it is %s", async (_, query, message) => {
    await env.CACHE.put(productKey("p1"), "{}");
    const error = await errorOf(await call(`/api/cache${query}`, { method: "DELETE", headers: admin }));
    expect(error).toEqual({ status: 400, code: "invalid_request", error: `invalid query string: ${message}` });
    expect(await env.CACHE.get(productKey("p1"))).not.toBeNull();
  });

  describe("a cursor the Worker did not return for this prefix", () => {
    /** A cursor the Worker really returned: a purge's first page, with KV listing 3 keys a page. */
    async function realCursor(prefix: string) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => env.CACHE.put(productKey(`c-${i}`), "{}")));
      const kv = withFaults(env.CACHE, { list: (options) => env.CACHE.list({ ...(options as KVNamespaceListOptions), limit: 3 }) });
      const res = await appClient({}, { CACHE: kv })(`/api/cache?prefix=${prefix}`, { method: "DELETE", headers: admin });
      return ((await res.json()) as { cursor: string }).cursor;
    }

    it.each([
      ["garbage", async () => "garbage"],
      ["KV's own cursor, unsigned", async () => (await realCursor("product:c-")).split(".")[0]!],
      ["a signed cursor with its signature altered", async () => `${(await realCursor("product:c-")).slice(0, -2)}AA`],
      ["a cursor issued for another prefix", async () => realCursor("product:")],
    ])("answers 400 invalid_request to %s, and KV never sees it", async (_, cursor) => {
      const value = await cursor();
      await env.CACHE.put(productKey("c-keep"), "{}");
      const { kv, calls } = countingKv(env.CACHE);
      const res = await appClient({}, { CACHE: kv })(`/api/cache?${new URLSearchParams({ prefix: "product:c-", cursor: value })}`, { method: "DELETE", headers: admin });
      expect(await errorOf(res)).toEqual({ status: 400, code: "invalid_request", error: "invalid query string: cursor: is not one this API returned for this prefix" });
      expect(calls).toEqual([]);
      expect(await env.CACHE.get(productKey("c-keep"))).not.toBeNull();
    });
  });

  it("answers 401 without the admin token", async () => {
    expect(await errorOf(await call("/api/cache?prefix=product:", { method: "DELETE" }))).toMatchObject({ status: 401 });
  });
});
