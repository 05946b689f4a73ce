import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import { clientKey } from "../src/middleware/rate-limit";
import { expectEnvelope, expectOfrepError } from "./reliability/harness";
import { admin, appClient, jsonInit, stubOrigin } from "./helpers";

// The test limiters allow 3 requests per 60 s per key (vitest.config.ts). Each test
// counts under its own client addresses, so tests do not share counters.
let testNumber = 0;
let ip: (n?: number) => string;
beforeEach(async () => {
  await reset();
  testNumber++;
  ip = (n = 0) => `198.51.${testNumber}.${n}`;
});
afterEach(() => vi.restoreAllMocks());

const RATE_LIMITS = JSON.stringify({ productMisses: { limit: 3, period: 60 }, refreshesPerClient: { limit: 3, period: 60 }, flagEvaluations: { limit: 3, period: 10 } });
const limited = (overrides: Partial<Env>) => appClient({}, { RATE_LIMITS, ...overrides });
const from = (address: string, headers: Record<string, string> = {}) => ({ headers: { "CF-Connecting-IP": address, ...headers } });

async function expectRateLimited(res: Response, retryAfter: string) {
  expect(res.headers.get("Retry-After")).toBe(retryAfter);
  await expectEnvelope(res, 429, "rate_limited");
}

describe("product misses, per client", () => {
  it("answers 429 with Retry-After and the envelope past the limit, without asking the origin or writing KV", async () => {
    const { urls } = stubOrigin(Response.json({ id: "x" }));
    const request = limited({ PRODUCT_MISS_LIMITER: env.TEST_LIMIT_3 });
    for (let i = 0; i < 3; i++) expect((await request(`/api/products/p-${i}`, from(ip()))).status).toBe(200);
    await expectRateLimited(await request("/api/products/p-3", from(ip())), "60");
    await expectRateLimited(await request("/api/products/p-4", from(ip())), "60");
    expect(urls).toHaveLength(3);
    expect((await env.CACHE.list()).keys.map((k) => k.name).sort()).toEqual(["product:p-0", "product:p-1", "product:p-2"]);
  });

  it("does not limit hits, other clients or admin tokens", async () => {
    stubOrigin(Response.json({ id: "x" }));
    const request = limited({ PRODUCT_MISS_LIMITER: env.TEST_LIMIT_3 });
    for (let i = 0; i < 3; i++) await request(`/api/products/p-${i}`, from(ip()));
    expect((await request("/api/products/p-9", from(ip()))).status).toBe(429);
    for (let i = 0; i < 10; i++) expect((await request("/api/products/p-0", from(ip()))).headers.get("X-Cache")).toBe("HIT");
    expect((await request("/api/products/p-9", from(ip(1)))).status).toBe(200);
    for (let i = 10; i < 15; i++) expect((await request(`/api/products/p-${i}`, from(ip(), admin))).status).toBe(200);
  });

  it("answers a remembered 404 without counting it as a miss", async () => {
    const { urls } = stubOrigin(new Response("no", { status: 404 }));
    const request = limited({ PRODUCT_MISS_LIMITER: env.TEST_LIMIT_3 });
    for (let i = 0; i < 10; i++) expect((await request("/api/products/unknown", from(ip()))).status).toBe(404);
    expect(urls).toHaveLength(1);
  });

  it("counts every local request as one client when CF-Connecting-IP is absent", async () => {
    stubOrigin(Response.json({ id: "x" }));
    const request = limited({ PRODUCT_MISS_LIMITER: env.TEST_LIMIT_3_SECOND });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(`/api/products/local-${testNumber}-${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });

  it("lets requests through when the limiter itself fails", async () => {
    stubOrigin(Response.json({ id: "x" }));
    const broken = { limit: () => Promise.reject(new Error("limiter down")) } as unknown as RateLimit;
    const request = limited({ PRODUCT_MISS_LIMITER: broken });
    for (let i = 0; i < 5; i++) expect((await request(`/api/products/p-${i}`, from(ip()))).status).toBe(200);
  });
});

describe("session refresh, per client and per session", () => {
  async function createSession(): Promise<string> {
    const res = await appClient()("/sessions", jsonInit("POST", { userId: "u", email: "u@example.com" }, admin));
    return (await res.json<{ sessionId: string }>()).sessionId;
  }
  const refresh = (request: ReturnType<typeof appClient>, id: string, address: string) =>
    request(`/sessions/${id}/refresh`, { method: "POST", headers: { Authorization: `Bearer ${id}`, "CF-Connecting-IP": address } });

  it("limits one client's refreshes across sessions", async () => {
    const request = limited({ REFRESH_CLIENT_LIMITER: env.TEST_LIMIT_3 });
    const ids = await Promise.all([1, 2, 3, 4].map(() => createSession()));
    for (const id of ids.slice(0, 3)) expect((await refresh(request, id, ip())).status).toBe(200);
    await expectRateLimited(await refresh(request, ids[3]!, ip()), "60");
  });

  it("limits one session's refreshes across clients, and not another session's", async () => {
    const request = limited({ REFRESH_SESSION_LIMITER: env.TEST_LIMIT_3_SECOND });
    const [id, other] = [await createSession(), await createSession()];
    for (let n = 0; n < 3; n++) expect((await refresh(request, id, ip(n))).status).toBe(200);
    expect((await refresh(request, id, ip(9))).status).toBe(429);
    expect((await refresh(request, other, ip(9))).status).toBe(200);
  });
});

describe("flag evaluation and OFREP, per client", () => {
  it("limits GET /api/features/:name and both OFREP routes together, with OFREP's error shape there", async () => {
    const request = limited({ FLAG_EVALUATION_LIMITER: env.TEST_LIMIT_3 });
    const body = JSON.stringify({ context: { targetingKey: "u" } });
    const ofrep = (path: string) => request(path, { method: "POST", headers: { "Content-Type": "application/json", "CF-Connecting-IP": ip() }, body });
    expect((await request("/api/features/f?userId=u", from(ip()))).status).toBe(200);
    expect((await ofrep("/ofrep/v1/evaluate/flags/f")).status).toBe(404);
    expect((await ofrep("/ofrep/v1/evaluate/flags")).status).toBe(200);

    await expectRateLimited(await request("/api/features/f?userId=u", from(ip())), "10");
    const single = await ofrep("/ofrep/v1/evaluate/flags/f");
    expect(single.headers.get("Retry-After")).toBe("10");
    await expectOfrepError(single, 429, "GENERAL");
    expect((await ofrep("/ofrep/v1/evaluate/flags")).status).toBe(429);
    expect((await request("/api/features/f?userId=u", from(ip(1)))).status).toBe(200);
  });
});

describe("the client a limit counts", () => {
  it("is the IPv4 address, or an IPv6 address's /64, however the address is written", () => {
    expect(clientKey("198.51.100.7")).toBe("198.51.100.7");
    expect(clientKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:0DB8:0001:0002:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8::2:1")).toBe("2001:db8:0:0::/64");
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
  });

  it("counts two addresses of one IPv6 /64 as one client", async () => {
    stubOrigin(Response.json({ id: "x" }));
    const request = limited({ PRODUCT_MISS_LIMITER: env.TEST_LIMIT_3 });
    const prefix = `2001:db8:${testNumber}:7`;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(`/api/products/v6-${i}`, from(`${prefix}::${i + 1}`))).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });
});
