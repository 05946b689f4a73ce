import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { Hono } from "hono/tiny";
import { createApp } from "../src/app";
import type { AppEnv } from "../src/env";
import { admin, appClient, call, errorOf, jsonInit, rateLimitedPuts, withFaults } from "./helpers";

beforeEach(() => reset());
afterEach(() => vi.restoreAllMocks());

const alice = { userId: "u1", email: "alice@example.com" };

describe("routing and the error envelope", () => {
  it("answers an unknown route with 404 not_found as JSON", async () => {
    const res = await call("/nope");
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await errorOf(res)).toMatchObject({ status: 404, code: "not_found" });
  });

  it.each([
    ["PATCH", "/sessions/x", "GET, HEAD, DELETE"],
    ["POST", "/health", "GET, HEAD"],
    ["POST", "/api/features/f", "GET, HEAD, PUT, DELETE"],
  ])("answers %s %s with 405 method_not_allowed and an Allow header", async (method, path, allow) => {
    const res = await call(path, { method });
    expect(await errorOf(res)).toMatchObject({ status: 405, code: "method_not_allowed" });
    expect(res.headers.get("Allow")?.split(", ").sort()).toEqual(allow.split(", ").sort());
  });

  it("sets the JSON API's security headers, and only those, on every response", async () => {
    for (const res of [await call("/health"), await call("/nope")]) {
      expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(res.headers.get("Strict-Transport-Security")).toMatch(/^max-age=\d+/);
      expect(res.headers.get("Referrer-Policy")).toBe("no-referrer");
      // Headers for HTML documents cost a runtime call each and protect nothing here.
      expect(res.headers.get("X-Frame-Options")).toBeNull();
    }
  });

  it("keeps every protection for a route mounted later with app.route and answering with c.json", async () => {
    const app = createApp();
    app.route("/", new Hono<AppEnv>().get("/extra/:id", (c) => c.json({ id: c.req.param("id") })));
    const request = (path: string, init?: RequestInit) => app.fetch(new Request(`http://worker.test${path}`, init), env);
    const ok = await request("/extra/1");
    expect(await ok.json()).toEqual({ id: "1" });
    expect(ok.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(ok.headers.get("Referrer-Policy")).toBe("no-referrer");
    const head = await request("/extra/1", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("Strict-Transport-Security")).toMatch(/^max-age=\d+/);
    const post = await request("/extra/1", { method: "POST" });
    expect(await errorOf(post)).toMatchObject({ status: 405, code: "method_not_allowed" });
    expect(post.headers.get("Allow")).toBe("GET, HEAD");
    const big = await request("/extra/1", { method: "PUT", body: "x".repeat(17 * 1024) });
    expect(await errorOf(big)).toMatchObject({ status: 413, code: "payload_too_large" });
  });

  it("answers 413 to a body over 16 KiB whatever the method, even one no route has", async () => {
    for (const method of ["PURGE", "PATCH", "OPTIONS"]) {
      const res = await call("/sessions/x", { method, body: "x".repeat(17 * 1024) });
      expect(await errorOf(res)).toMatchObject({ status: 413, code: "payload_too_large" });
      expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    }
  });

  it("turns an unexpected failure into a 500 internal_error that leaks no detail", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const broken = appClient({
      now: () => {
        throw new Error("secret detail");
      },
    });
    const res = await broken("/sessions", jsonInit("POST", alice, admin));
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(JSON.parse(text)).toEqual({ error: "internal error", code: "internal_error" });
    expect(text).not.toContain("secret detail");
    expect(logged).toHaveBeenCalled();
  });

  it("never answers 500 and always answers errors as {error, code} JSON, whatever the client sends", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => Response.json({ id: "p" }));
    vi.spyOn(console, "error").mockImplementation(() => {});
    const request = appClient();
    const segment = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("a".repeat(32), "p1", "flag-1", "..", "%", "%2F", ""));
    const path = fc.tuple(
      fc.constantFrom("/sessions", "/sessions/", "/api/products/", "/api/features/", "/api/features", "/api/cache", "/health", "/"),
      segment,
      fc.constantFrom("", "/cache", "?userId=", "?prefix=", "?prefix=product:&cursor=garbage", "?userId=u&userId=v"),
    );
    const body = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 }).map((j) => j));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
        path,
        body,
        fc.constantFrom<Record<string, string>>({}, admin, { Authorization: "Bearer x" }, { Cookie: "session=%%%" }),
        fc.constantFrom("application/json", "text/plain", "application/json; charset=utf-8"),
        async (method, [base, seg, suffix], payload, auth, contentType) => {
          const url = `${base}${encodeURI(seg).replace(/\?/g, "%3F").replace(/#/g, "%23")}${suffix}`;
          const withBody = payload !== undefined && method !== "GET";
          const res = await request(url, {
            method,
            headers: { ...auth, ...(withBody ? { "Content-Type": contentType } : {}) },
            body: withBody ? payload : undefined,
          });
          expect(res.status).not.toBe(500);
          if (res.status >= 400) {
            const error = await res.json<Record<string, unknown>>();
            expect(Object.keys(error).sort()).toEqual(["code", "error"]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("KV failures", () => {
  let logged: MockInstance<typeof console.error>;
  beforeEach(() => {
    logged = vi.spyOn(console, "error").mockImplementation(() => {});
  });

  const rejecting = () => Promise.reject(new Error("KV GET failed: 500 Internal Server Error"));
  const throwing = () => {
    throw new Error("binding exploded");
  };

  it.each([
    ["a session read that rejects", "SESSIONS", { get: rejecting }, `/sessions/${"a".repeat(32)}`, undefined],
    ["a session write that throws", "SESSIONS", { put: throwing }, "/sessions", jsonInit("POST", alice, admin)],
    ["a cache read that rejects", "CACHE", { getWithMetadata: rejecting }, "/api/products/p1", undefined],
    ["a cache purge whose list throws", "CACHE", { list: throwing }, "/api/cache?prefix=product:", { method: "DELETE", headers: admin }],
    ["a flag read that rejects", "CONFIG", { get: rejecting }, "/api/features/f", undefined],
    ["a flag listing that rejects", "CONFIG", { list: rejecting }, "/api/features", { headers: admin }],
    ["a flag write that throws", "CONFIG", { put: throwing }, "/api/features/f", jsonInit("PUT", { enabled: true }, admin)],
  ] as const)("answers 503 unavailable with Retry-After, and logs, for %s", async (_, binding, faults, path, init) => {
    const res = await appClient({}, { [binding]: withFaults(env[binding], faults) })(path, init);
    expect(res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(await errorOf(res)).toMatchObject({ status: 503, code: "unavailable" });
    expect(logged).toHaveBeenCalledWith(expect.stringContaining(`KV ${binding}.`));
  });

  it("answers 503 when a KV call does not settle within kvTimeoutMs", async () => {
    const hanging = withFaults(env.SESSIONS, { get: () => new Promise(() => {}) });
    const started = Date.now();
    const res = await appClient({ kvTimeoutMs: 50 }, { SESSIONS: hanging })(`/sessions/${"a".repeat(32)}`);
    expect(await errorOf(res)).toMatchObject({ status: 503, code: "unavailable" });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("retries a write rejected by KV's one-write-per-second-per-key limit, and succeeds", async () => {
    const { kv: limited, attempts } = rateLimitedPuts(env.SESSIONS, 2);
    const res = await appClient({}, { SESSIONS: limited })("/sessions", jsonInit("POST", alice, admin));
    expect(res.status).toBe(201);
    expect(attempts).toHaveLength(4); // the session twice refused, then stored, then its index entry
    expect((await env.SESSIONS.list()).keys).toHaveLength(2);
  });

  it("answers 503 rather than dropping a write KV keeps rate-limiting", async () => {
    const { kv: limited, attempts } = rateLimitedPuts(env.CONFIG, Infinity);
    const res = await appClient({}, { CONFIG: limited })("/api/features/f", jsonInit("PUT", { enabled: true }, admin));
    expect(await errorOf(res)).toMatchObject({ status: 503, code: "unavailable" });
    expect(attempts).toHaveLength(3);
  });
});
