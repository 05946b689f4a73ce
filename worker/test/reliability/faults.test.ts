import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startBackup } from "../../src/backup/backup";
import { backupDeps } from "../../src/backup/schedule";
import { type CacheMetadata, decodeFlag, decodeSession, flagKey, productKey, sessionKey, userSessionKey } from "../../src/contract";
import { admin, appFetch, BASE, type OriginReply, rateLimitedPuts, stubOrigin } from "../helpers";
import { appRoutes, expectEnvelope, expectOfrepError, kvSnapshot } from "./harness";

const SESSION_ID = "s".repeat(32);
const jsonRequest = (method: string, path: string, body: unknown) =>
  new Request(`${BASE}${path}`, { method, headers: { ...admin, "Content-Type": "application/json" }, body: JSON.stringify(body) });

/** One request per route that touches KV, each valid and authorised, so only the fault can fail it. */
const CASES: { route: string; request: () => Request; setup?: () => Promise<unknown> }[] = [
  { route: "POST /sessions", request: () => jsonRequest("POST", "/sessions", { userId: "u-1", email: "ada@example.com" }) },
  { route: "GET /sessions/:id", request: () => new Request(`${BASE}/sessions/${SESSION_ID}`) },
  { route: "DELETE /sessions/:id", request: () => new Request(`${BASE}/sessions/${SESSION_ID}`, { method: "DELETE", headers: admin }) },
  { route: "POST /sessions/:id/refresh", request: () => new Request(`${BASE}/sessions/${SESSION_ID}/refresh`, { method: "POST", headers: admin }) },
  { route: "GET /users/:userId/sessions", request: () => new Request(`${BASE}/users/u-1/sessions`, { headers: admin }) },
  { route: "DELETE /users/:userId/sessions", request: () => new Request(`${BASE}/users/u-1/sessions`, { method: "DELETE", headers: admin }) },
  { route: "GET /api/products/:id", request: () => new Request(`${BASE}/api/products/p1`) },
  { route: "DELETE /api/products/:id/cache", request: () => new Request(`${BASE}/api/products/p1/cache`, { method: "DELETE", headers: admin }) },
  { route: "DELETE /api/cache", request: () => new Request(`${BASE}/api/cache?prefix=product:`, { method: "DELETE", headers: admin }) },
  { route: "GET /api/features", request: () => new Request(`${BASE}/api/features`, { headers: admin }) },
  { route: "GET /api/features/:name", request: () => new Request(`${BASE}/api/features/checkout?userId=u-1`) },
  { route: "PUT /api/features/:name", request: () => jsonRequest("PUT", "/api/features/checkout", { enabled: true }) },
  { route: "POST /api/features", request: () => jsonRequest("POST", "/api/features", { flags: { checkout: { state: "ENABLED", variants: { on: true }, defaultVariant: "on" } } }) },
  { route: "DELETE /api/features/:name", request: () => new Request(`${BASE}/api/features/checkout`, { method: "DELETE", headers: admin }) },
  { route: "POST /api/backups", request: () => new Request(`${BASE}/api/backups`, { method: "POST", headers: admin }) },
  {
    route: "POST /api/backups/:id/restore",
    // A backup made with healthy KV first: without one the restore is a 404 before it reads KV.
    setup: () => startBackup(backupDeps(env), ["CONFIG"], "admin"),
    request: () => jsonRequest("POST", "/api/backups/latest/restore", { namespace: "CONFIG" }),
  },
  { route: "POST /ofrep/v1/evaluate/flags/:key", request: () => jsonRequest("POST", "/ofrep/v1/evaluate/flags/checkout", { context: { targetingKey: "u-1" } }) },
  { route: "POST /ofrep/v1/evaluate/flags", request: () => jsonRequest("POST", "/ofrep/v1/evaluate/flags", { context: { targetingKey: "u-1" } }) },
];
/** Routes that never touch KV (the backup listings read R2 only; continue reads KV only mid-run, as start's case shows). */
const NO_KV = new Set(["GET /health", "GET /health/details", "GET /openapi.json", "GET /api/backups", "GET /api/backups/:id", "POST /api/backups/continue"]);

const KV_FAULTS = {
  throws: () => {
    throw new Error("KV binding exploded");
  },
  rejects: () => Promise.reject(new Error("KV GET failed: 500 Internal Server Error")),
  hangs: () => new Promise<never>(() => {}),
};

/** A binding whose every operation fails the same way. */
function brokenKv(kv: KVNamespace, fault: () => unknown): KVNamespace {
  return new Proxy(kv, { get: (target, prop) => (typeof Reflect.get(target, prop) === "function" ? fault : Reflect.get(target, prop)) });
}

let logged: ReturnType<typeof vi.spyOn>;
beforeEach(async () => {
  await reset();
  logged = vi.spyOn(console, "error").mockImplementation(() => {});
});
afterEach(() => vi.restoreAllMocks());

describe("KV faults", () => {
  it("covers every route the app registers that touches KV", () => {
    const registered = appRoutes().map((r) => `${r.method} ${r.path}`).filter((r) => !NO_KV.has(r));
    expect(CASES.map((c) => c.route).sort()).toEqual(registered.sort());
  });

  describe.each(Object.entries(KV_FAULTS))("when every KV operation %s", (_fault, fault) => {
    it.each(CASES)("answers $route with 503 JSON and Retry-After, and logs it", async ({ route, request, setup }) => {
      await setup?.();
      stubOrigin(Response.json({ id: "p1" }));
      const broken = { SESSIONS: brokenKv(env.SESSIONS, fault), CACHE: brokenKv(env.CACHE, fault), CONFIG: brokenKv(env.CONFIG, fault) };
      const res = await appFetch({ kvTimeoutMs: 20 }, broken)(request());
      expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
      if (route.includes(" /ofrep/")) await expectOfrepError(res, 503, "GENERAL");
      else await expectEnvelope(res, 503, "unavailable");
      expect(logged).toHaveBeenCalled();
    });
  });
});

describe("origin faults", () => {
  const REPLIES: [string, OriginReply][] = [
    ["answers 500", new Response("boom", { status: 500 })],
    ["answers 403", new Response("no", { status: 403 })],
    ["answers 200 with a body that is not JSON", new Response("<html>", { status: 200 })],
    ["is unreachable", new TypeError("Network connection lost.")],
    ["does not answer in time", "hang"],
  ];

  async function seedStaleCopy(id: string) {
    const metadata: CacheMetadata = { fetchedAt: Date.now() - 3_600_000, ttlSeconds: 60 };
    await env.CACHE.put(productKey(id), JSON.stringify({ id, name: "old lamp" }), { metadata });
  }

  it.each(REPLIES)("serves the stale copy as STALE when the origin %s", async (_what, reply) => {
    await seedStaleCopy("p-stale");
    const { spy: origin } = stubOrigin(reply);
    const res = await appFetch({ originTimeoutMs: 30 })(new Request(`${BASE}/api/products/p-stale`));
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Cache")).toBe("STALE");
    expect(await res.json()).toEqual({ id: "p-stale", name: "old lamp" });
    expect(origin).toHaveBeenCalledOnce();
  });

  it.each(REPLIES)("answers 502 JSON when the origin %s and there is no copy", async (_what, reply) => {
    stubOrigin(reply);
    const res = await appFetch({ originTimeoutMs: 30 })(new Request(`${BASE}/api/products/p-none`));
    await expectEnvelope(res, 502, "origin_error");
    expect(await env.CACHE.get(productKey("p-none"))).toBeNull();
  });
});

describe("KV's one-write-per-second limit (429)", () => {
  it("retries a session write refused with 429, and the session is really stored", async () => {
    const { kv, attempts } = rateLimitedPuts(env.SESSIONS, 1);
    const res = await appFetch({}, { SESSIONS: kv })(jsonRequest("POST", "/sessions", { userId: "u-429", email: "ada@example.com" }));
    expect(res.status).toBe(201);
    const { sessionId } = (await res.json()) as { sessionId: string };
    expect(attempts).toEqual([await sessionKey(sessionId), await sessionKey(sessionId), await userSessionKey("u-429", sessionId)]);
    const stored = await env.SESSIONS.get(await sessionKey(sessionId));
    expect(stored && decodeSession(stored)).toMatchObject({ userId: "u-429" });
  });

  it("retries a flag write refused with 429, and the flag is really stored", async () => {
    const { kv, attempts } = rateLimitedPuts(env.CONFIG, 1);
    const res = await appFetch({}, { CONFIG: kv })(jsonRequest("PUT", "/api/features/rollout", { enabled: true, percentage: 5 }));
    expect(res.status).toBe(200);
    expect(attempts).toHaveLength(2);
    const stored = await env.CONFIG.get(flagKey("rollout"));
    expect(stored && decodeFlag(stored)).toEqual({ enabled: true, percentage: 5 });
  });

  it("tells the client 503 with Retry-After when KV keeps refusing, and nothing is stored", async () => {
    const { kv, attempts } = rateLimitedPuts(env.SESSIONS, Infinity);
    const before = await kvSnapshot();
    const res = await appFetch({}, { SESSIONS: kv })(jsonRequest("POST", "/sessions", { userId: "u-429", email: "ada@example.com" }));
    expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
    await expectEnvelope(res, 503, "unavailable");
    expect(attempts.length).toBeGreaterThan(1);
    expect(await kvSnapshot()).toEqual(before);
  });
});
