import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { encodeFlag, type Flag, flagKey } from "../src/contract";
import { admin, appClient, call, countingKv, errorOf, jsonInit, withFaults } from "./helpers";

beforeEach(() => reset());
afterEach(() => vi.restoreAllMocks());

const put = (name: string, flag: unknown, request = call) => request(`/api/features/${name}`, jsonInit("PUT", flag, admin));
const evaluate = async (name: string, query = "", request = call) =>
  (await request(`/api/features/${name}${query}`)).json<{ name: string; enabled: boolean; reason: string }>();

/** Writes flags straight into CONFIG the way the Worker and the Pulumi program store them. */
async function seedFlags(count: number, flag: (i: number) => Flag = () => ({ enabled: true })) {
  for (let i = 0; i < count; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, (_, j) => {
        const { value, metadata } = encodeFlag(flag(i + j));
        return env.CONFIG.put(flagKey(`flag-${String(i + j).padStart(4, "0")}`), value, { metadata });
      }),
    );
  }
}

describe("PUT /api/features/:name", () => {
  it("stores the flag as value and as list metadata, and answers it with its name", async () => {
    const flag = { enabled: true, percentage: 12.5, allowedUsers: ["alice"], metadata: { owner: "checkout-team" } };
    const res = await put("new-checkout", flag);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "new-checkout", ...flag });
    const stored = await env.CONFIG.getWithMetadata(flagKey("new-checkout"));
    expect(JSON.parse(stored.value ?? "")).toEqual(flag);
    expect(stored.metadata).toEqual({ flag });
  });

  it.each([
    ["a typo such as percentge", { enabled: true, percentge: 10 }, "percentge"],
    ["a missing enabled", { percentage: 10 }, "enabled"],
    ["enabled as a string", { enabled: "true" }, "enabled"],
    ["a percentage over 100", { enabled: true, percentage: 101 }, "percentage"],
    ["a negative percentage", { enabled: true, percentage: -1 }, "percentage"],
    ["allowedUsers that is not an array", { enabled: true, allowedUsers: "alice" }, "allowedUsers"],
    ["an empty user id", { enabled: true, allowedUsers: [""] }, "allowedUsers.0"],
    ["metadata that is not an object", { enabled: true, metadata: "x" }, "metadata"],
  ])("answers 400 invalid_request naming the field for %s, and writes nothing", async (_, body, field) => {
    const error = await errorOf(await put("f", body));
    expect(error).toMatchObject({ status: 400, code: "invalid_request" });
    expect(error.error).toContain(`${field}:`);
    expect((await env.CONFIG.list()).keys).toEqual([]);
  });

  it("calls a typo such as percentge an unknown field", async () => {
    const error = await errorOf(await put("f", { enabled: true, percentge: 10 }));
    expect(error.error).toBe("invalid request body: percentge: unknown field");
  });

  it.each([["a JSON array", "[]"], ["malformed JSON", "{"], ["JSON null", "null"]])(
    "answers 400 invalid_request to %s",
    async (_, body) => {
      const res = await call("/api/features/f", { method: "PUT", headers: { ...admin, "Content-Type": "application/json" }, body });
      expect(await errorOf(res)).toMatchObject({ status: 400, code: "invalid_request" });
    },
  );

  it.each([
    ["starting with a punctuation mark", "-flag"],
    ["longer than 128 characters", "f".repeat(129)],
    ["with a character outside [A-Za-z0-9_.:-]", "a*b"],
  ])("answers 400 invalid_request naming the name for a flag name %s", async (_, name) => {
    const error = await errorOf(await put(name, { enabled: true }));
    expect(error).toMatchObject({ status: 400, code: "invalid_request" });
    expect(error.error).toContain("name:");
  });

  it("answers 401 without the admin token and 503 when none is configured", async () => {
    expect((await call("/api/features/f", jsonInit("PUT", { enabled: true }))).status).toBe(401);
    const res = await appClient({}, { ADMIN_TOKEN: undefined })("/api/features/f", jsonInit("PUT", { enabled: true }, admin));
    expect(await errorOf(res)).toMatchObject({ status: 503, code: "unavailable" });
    expect((await env.CONFIG.list()).keys).toEqual([]);
  });

  it("is visible at once to evaluations through the same isolate, even after a cached miss", async () => {
    const request = appClient();
    expect(await evaluate("beta", "", request)).toEqual({ name: "beta", enabled: false, reason: "DEFAULT" });
    await put("beta", { enabled: true }, request);
    expect(await evaluate("beta", "", request)).toEqual({ name: "beta", enabled: true, reason: "STATIC" });
    await put("beta", { enabled: false }, request);
    expect(await evaluate("beta", "", request)).toEqual({ name: "beta", enabled: false, reason: "DISABLED" });
  });
});

describe("GET /api/features/:name", () => {
  it.each<[string, Flag | undefined, string, boolean, string]>([
    ["a missing flag", undefined, "?userId=alice", false, "DEFAULT"],
    ["a disabled flag, even for an allow-listed user", { enabled: false, allowedUsers: ["alice"] }, "?userId=alice", false, "DISABLED"],
    ["an allow-listed user", { enabled: true, percentage: 0, allowedUsers: ["alice"] }, "?userId=alice", true, "TARGETING_MATCH"],
    ["another user of a 0% rollout", { enabled: true, percentage: 0, allowedUsers: ["alice"] }, "?userId=bob", false, "SPLIT"],
    ["a user of a 100% rollout", { enabled: true, percentage: 100 }, "?userId=bob", true, "SPLIT"],
    ["an anonymous caller of a 100% rollout", { enabled: true, percentage: 100 }, "", false, "DEFAULT"],
    ["an empty userId on a rollout", { enabled: true, percentage: 100 }, "?userId=", false, "DEFAULT"],
    ["an enabled flag without rollout", { enabled: true }, "", true, "STATIC"],
  ])("resolves %s", async (_, flag, query, enabled, reason) => {
    if (flag) await put("f", flag);
    expect(await evaluate("f", query)).toEqual({ name: "f", enabled, reason });
  });

  it("makes no KV operation for a flag this isolate read less than 30 s ago, then reads it again", async () => {
    await put("hot", { enabled: true, percentage: 50 });
    let now = Date.now();
    const { kv, calls } = countingKv(env.CONFIG);
    const request = appClient({ now: () => now }, { CONFIG: kv });
    await evaluate("hot", "?userId=u0", request);
    expect(calls).toEqual(["get flag:hot"]);
    for (let i = 1; i <= 100; i++) await evaluate("hot", `?userId=u${i}`, request);
    expect(calls).toHaveLength(1);
    now += 30_001;
    await evaluate("hot", "?userId=u1", request);
    expect(calls).toEqual(["get flag:hot", "get flag:hot"]);
  });

  it("reads a flag with KV's minimum cacheTtl (30 s), so a change reaches every location within 30 s + 30 s", async () => {
    const { kv, calls, options } = countingKv(env.CONFIG);
    await evaluate("hot", "", appClient({}, { CONFIG: kv }));
    expect(calls).toEqual(["get flag:hot"]);
    expect(options).toEqual([{ cacheTtl: 30 }]);
  });

  it("reads an uncached flag in each concurrent first evaluation itself, then answers from the isolate's cache", async () => {
    await put("cold", { enabled: true, percentage: 100 });
    const { kv, calls } = countingKv(env.CONFIG);
    const request = appClient({}, { CONFIG: kv });
    // No request awaits another's read (a promise must not cross requests): each cold one reads, with cacheTtl.
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => evaluate("cold", `?userId=u${i}`, request)));
    expect(results.map((r) => r.reason)).toEqual(Array(5).fill("SPLIT"));
    expect(calls).toEqual(Array(5).fill("get flag:cold"));
    await evaluate("cold", "?userId=u9", request);
    expect(calls).toHaveLength(5);
  });

  it("does not cache a failed read: that caller gets 503 and the next evaluation reads again", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    await put("flaky", { enabled: true });
    let reads = 0;
    const flaky = withFaults(env.CONFIG, {
      get: (...args: unknown[]) => (++reads === 1 ? Promise.reject(new Error("KV down")) : env.CONFIG.get(...(args as [string]))),
    });
    const request = appClient({}, { CONFIG: flaky });
    expect((await request("/api/features/flaky")).status).toBe(503);
    expect(await evaluate("flaky", "", request)).toMatchObject({ enabled: true, reason: "STATIC" });
    expect(reads).toBe(2);
  });

  it("caches a missing flag too, so unknown names cost one KV read per isolate TTL", async () => {
    const { kv, calls } = countingKv(env.CONFIG);
    const request = appClient({}, { CONFIG: kv });
    for (let i = 0; i < 5; i++) await evaluate("nope", "", request);
    expect(calls).toEqual(["get flag:nope"]);
  });

  it("treats a corrupt stored flag as missing rather than failing", async () => {
    await env.CONFIG.put(flagKey("broken"), "{\"enabled\": \"yes\"}");
    expect(await evaluate("broken", "?userId=alice")).toEqual({ name: "broken", enabled: false, reason: "DEFAULT" });
  });

  it("answers 400 for a userId over 256 characters", async () => {
    const res = await call(`/api/features/f?userId=${"u".repeat(257)}`);
    expect(await errorOf(res)).toMatchObject({ status: 400, code: "invalid_request" });
  });

  it.each([["starting with a dash", "-f"], ["with a space", "f%20x"], ["over 128 characters", "f".repeat(129)]])(
    "answers 400 invalid_request naming the name for a flag name %s",
    async (_, name) => {
      const res = await call(`/api/features/${name}?userId=u`);
      expect(await errorOf(res)).toMatchObject({ status: 400, code: "invalid_request", error: expect.stringMatching(/^invalid path: name: /) });
    },
  );
});

describe("GET /api/features", () => {
  it("lists 100 flags with a single KV list call and no per-flag reads", async () => {
    await seedFlags(100, (i) => ({ enabled: i % 2 === 0, percentage: i }));
    const { kv, calls } = countingKv(env.CONFIG);
    const res = await appClient({}, { CONFIG: kv })("/api/features", { headers: admin });
    expect(res.status).toBe(200);
    const flags = await res.json<{ name: string; flag: Flag }[]>();
    expect(flags).toHaveLength(100);
    expect(flags[7]).toEqual({ name: "flag-0007", flag: { enabled: false, percentage: 7 } });
    expect(calls).toEqual([`list ${JSON.stringify({ prefix: "flag:" })}`]);
  });

  it("costs one list call per 1000 flags", async () => {
    await seedFlags(1001);
    const { kv, calls } = countingKv(env.CONFIG);
    const flags = await (await appClient({}, { CONFIG: kv })("/api/features", { headers: admin })).json<unknown[]>();
    expect(flags).toHaveLength(1001);
    expect(calls.map((c) => c.split(" ")[0])).toEqual(["list", "list"]);
  }, 30_000);

  it("still lists a flag too large for KV metadata, at the cost of one read for that flag", async () => {
    const big: Flag = { enabled: true, allowedUsers: Array.from({ length: 100 }, (_, i) => `user-${String(i).padStart(8, "0")}`) };
    expect(encodeFlag(big).metadata).toEqual({ oversize: true });
    await put("big", big);
    await put("small", { enabled: false });
    const { kv, calls } = countingKv(env.CONFIG);
    const res = await appClient({}, { CONFIG: kv })("/api/features", { headers: admin });
    expect(await res.json()).toEqual([{ name: "big", flag: big }, { name: "small", flag: { enabled: false } }]);
    expect(calls.map((c) => c.split(" ")[0])).toEqual(["list", "get"]);
    expect(await evaluate("big", "?userId=user-00000042")).toMatchObject({ enabled: true, reason: "TARGETING_MATCH" });
  });

  it("answers 401 without the admin token: flags hold user ids", async () => {
    expect(await errorOf(await call("/api/features"))).toMatchObject({ status: 401, code: "unauthorized" });
  });
});

describe("DELETE /api/features/:name", () => {
  it("deletes the flag, answers 204, and the same isolate sees it gone at once", async () => {
    const request = appClient();
    await put("gone", { enabled: true }, request);
    expect(await evaluate("gone", "", request)).toMatchObject({ enabled: true });
    const res = await request("/api/features/gone", { method: "DELETE", headers: admin });
    expect(res.status).toBe(204);
    expect(await env.CONFIG.get(flagKey("gone"))).toBeNull();
    expect(await evaluate("gone", "", request)).toEqual({ name: "gone", enabled: false, reason: "DEFAULT" });
    expect((await request("/api/features/gone", { method: "DELETE", headers: admin })).status).toBe(204);
  });

  it("answers 401 without the admin token and keeps the flag", async () => {
    await put("kept", { enabled: true });
    expect((await call("/api/features/kept", { method: "DELETE" })).status).toBe(401);
    expect(await env.CONFIG.get(flagKey("kept"))).not.toBeNull();
  });
});

describe("flags declared in the stack config (MANAGED_FLAGS)", () => {
  const request = () => appClient({}, { MANAGED_FLAGS: "checkout, search-v2" });

  it("answers 409 managed_by_config to PUT and DELETE and leaves KV untouched", async () => {
    const { value, metadata } = encodeFlag({ enabled: true });
    await env.CONFIG.put(flagKey("search-v2"), value, { metadata });
    const putError = await errorOf(await put("search-v2", { enabled: false }, request()));
    expect(putError).toMatchObject({ status: 409, code: "managed_by_config" });
    expect(putError.error).toContain("pulumi up");
    const deleteRes = await request()("/api/features/search-v2", { method: "DELETE", headers: admin });
    expect(await errorOf(deleteRes)).toMatchObject({ status: 409, code: "managed_by_config" });
    expect(JSON.parse((await env.CONFIG.get(flagKey("search-v2"))) ?? "")).toEqual({ enabled: true });
    expect(await evaluate("search-v2", "", request())).toMatchObject({ enabled: true, reason: "STATIC" });
  });

  it("still accepts writes to flags that are not declared there", async () => {
    expect((await put("search", { enabled: true }, request())).status).toBe(200);
  });
});
