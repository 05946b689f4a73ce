import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { encodeFlag, type Flag, flagKey } from "../src/contract";
import { admin, appClient, call, countingKv, jsonInit } from "./helpers";

beforeEach(() => reset());

const SINGLE = "/ofrep/v1/evaluate/flags";
const seed = (name: string, flag: Flag) => {
  const { value, metadata } = encodeFlag(flag);
  return env.CONFIG.put(flagKey(name), value, { metadata });
};
const single = (key: string, body: unknown, request = call) => request(`${SINGLE}/${key}`, jsonInit("POST", body));
const bulk = (body: unknown, headers: Record<string, string> = {}, request = call) => request(SINGLE, jsonInit("POST", body, headers));

const RULES: Record<string, Flag> = {
  static: { enabled: true },
  disabled: { enabled: false, allowedUsers: ["alice"] },
  allowlist: { enabled: true, percentage: 0, allowedUsers: ["alice"] },
  split: { enabled: true, percentage: 50, metadata: { owner: "checkout", weight: 3, live: true, nested: { no: 1 }, list: [1] } },
};
const USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "u-1", "u-2", "u-3", "u-4", "u-5", "u-6"];

describe("POST /ofrep/v1/evaluate/flags/:key (server providers)", () => {
  it("answers what GET /api/features/:name answers, for every user and rule, as an OFREP evaluation", async () => {
    for (const [name, flag] of Object.entries(RULES)) await seed(name, flag);
    const seen = new Set<string>();
    for (const name of Object.keys(RULES)) {
      for (const userId of USERS) {
        const expected = (await (await call(`/api/features/${name}?userId=${userId}`)).json()) as { enabled: boolean; reason: string };
        const res = await single(name, { context: { targetingKey: userId, email: `${userId}@example.com` } });
        expect(res.status).toBe(200);
        const answer = (await res.json()) as Record<string, unknown>;
        expect(answer).toEqual({
          key: name,
          value: expected.enabled,
          reason: expected.reason,
          variant: expected.enabled ? "on" : "off",
          metadata: name === "split" ? { owner: "checkout", weight: 3, live: true } : {},
        });
        seen.add(`${answer.reason} ${answer.value}`);
      }
    }
    // The spread reached every rule's outcome, both sides of the split included.
    expect([...seen].sort()).toEqual(["DISABLED false", "SPLIT false", "SPLIT true", "STATIC true", "TARGETING_MATCH true"]);
  });

  it("evaluates without a targetingKey (or without a context) as an anonymous caller", async () => {
    await seed("split", RULES.split!);
    await seed("static", RULES.static!);
    expect(await (await single("split", { context: {} })).json()).toMatchObject({ value: false, reason: "DEFAULT", variant: "off" });
    expect(await (await single("static", {})).json()).toMatchObject({ value: true, reason: "STATIC", variant: "on" });
  });

  it("answers 404 FLAG_NOT_FOUND for a missing flag, so the SDK falls back to the caller's default", async () => {
    const res = await single("nope", { context: { targetingKey: "alice" } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ key: "nope", errorCode: "FLAG_NOT_FOUND", errorDetails: "flag nope was not found" });
  });

  it("answers 404 for a key that cannot be a flag name without a KV read", async () => {
    const { kv, calls } = countingKv(env.CONFIG);
    const res = await single("-not-a-flag", { context: {} }, appClient({}, { CONFIG: kv }));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ key: "-not-a-flag", errorCode: "FLAG_NOT_FOUND" });
    expect(calls).toEqual([]);
  });

  it.each([
    ["malformed JSON", "{", "application/json", "PARSE_ERROR"],
    ["a JSON array", "[]", "application/json", "PARSE_ERROR"],
    ["JSON sent as text/plain", '{"context":{}}', "text/plain", "PARSE_ERROR"],
    ["a context that is not an object", '{"context":"alice"}', "application/json", "INVALID_CONTEXT"],
    ["a targetingKey that is not a string", '{"context":{"targetingKey":42}}', "application/json", "INVALID_CONTEXT"],
    ["a targetingKey over 256 characters", JSON.stringify({ context: { targetingKey: "x".repeat(257) } }), "application/json", "INVALID_CONTEXT"],
  ])("answers 400 %s with OFREP's error shape", async (_, body, contentType, errorCode) => {
    await seed("static", RULES.static!);
    const res = await call(`${SINGLE}/static`, { method: "POST", headers: { "Content-Type": contentType }, body });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ key: "static", errorCode });
    expect(Object.keys(answer).sort()).toEqual(["errorCode", "errorDetails", "key"]);
  });

  it("is public, and reveals neither allow-lists nor rules", async () => {
    await seed("allowlist", RULES.allowlist!);
    const answer = JSON.stringify(await (await single("allowlist", { context: { targetingKey: "bob" } })).json());
    expect(answer).not.toContain("alice");
    expect(answer).not.toContain("percentage");
  });

  it("shares the evaluation route's isolate cache: a hot flag costs no KV operation, and a PUT is seen at once", async () => {
    await seed("hot", { enabled: true });
    const { kv, calls } = countingKv(env.CONFIG);
    const request = appClient({}, { CONFIG: kv });
    await request("/api/features/hot?userId=u1");
    for (let i = 0; i < 20; i++) await single("hot", { context: { targetingKey: `u${i}` } }, request);
    expect(calls).toEqual(["get flag:hot"]);
    await request("/api/features/hot", jsonInit("PUT", { enabled: false }, admin));
    expect(await (await single("hot", { context: { targetingKey: "u1" } }, request)).json()).toMatchObject({ value: false, reason: "DISABLED" });
  });
});

describe("POST /ofrep/v1/evaluate/flags (web providers, bulk)", () => {
  it("evaluates every flag for the context, with an ETag", async () => {
    for (const [name, flag] of Object.entries(RULES)) await seed(name, flag);
    const res = await bulk({ context: { targetingKey: "alice" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("ETag")).toMatch(/^"[0-9a-f]{32}"$/);
    const { flags } = (await res.json()) as { flags: { key: string; value: boolean; reason: string }[] };
    expect(flags.map((f) => [f.key, f.value, f.reason])).toEqual([
      ["allowlist", true, "TARGETING_MATCH"],
      ["disabled", false, "DISABLED"],
      ["split", expect.any(Boolean), "SPLIT"],
      ["static", true, "STATIC"],
    ]);
  });

  it("answers 304 with no body to the current tag, and 200 with a new tag once a flag changes", async () => {
    await seed("static", RULES.static!);
    const first = await bulk({ context: { targetingKey: "alice" } });
    const tag = first.headers.get("ETag")!;
    for (const ifNoneMatch of [tag, `W/${tag}`, `"other", ${tag}`, "*"]) {
      const again = await bulk({ context: { targetingKey: "alice" } }, { "If-None-Match": ifNoneMatch });
      expect(again.status).toBe(304);
      expect(again.headers.get("ETag")).toBe(tag);
      expect(await again.text()).toBe("");
    }
    await call("/api/features/static", jsonInit("PUT", { enabled: false }, admin));
    const changed = await bulk({ context: { targetingKey: "alice" } }, { "If-None-Match": tag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("ETag")).not.toBe(tag);
  });

  it("gives a caller whose answer differs another tag", async () => {
    await seed("allowlist", RULES.allowlist!);
    // A fresh app: the shared one keeps the flag set an earlier test read, for its trust window.
    const request = appClient({});
    const alice = (await bulk({ context: { targetingKey: "alice" } }, {}, request)).headers.get("ETag");
    const bob = await bulk({ context: { targetingKey: "bob" } }, { "If-None-Match": alice! }, request);
    expect(bob.status).toBe(200);
    expect(bob.headers.get("ETag")).not.toBe(alice);
  });

  // The listing is the admin listing's (flags.test.ts: one list per 1000 flags); here, that no flag costs a read.
  it("costs one KV list and no per-flag read", async () => {
    for (const [name, flag] of Object.entries(RULES)) await seed(name, flag);
    const { kv, calls } = countingKv(env.CONFIG);
    const res = await bulk({ context: { targetingKey: "alice" } }, {}, appClient({}, { CONFIG: kv }));
    expect(((await res.json()) as { flags: unknown[] }).flags).toHaveLength(4);
    expect(calls.map((c) => c.split(" ")[0])).toEqual(["list"]);
  });

  it("answers 400 PARSE_ERROR without a key for a body that is not a JSON object", async () => {
    const res = await call(SINGLE, { method: "POST", headers: { "Content-Type": "application/json" }, body: "[1]" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ errorCode: "PARSE_ERROR", errorDetails: "the body must be a JSON object" });
  });
});

describe("OFREP from a browser on another origin", () => {
  const origin = "https://app.example";

  it.each([SINGLE, `${SINGLE}/static`])("answers the preflight for %s", async (path) => {
    const res = await call(path, {
      method: "OPTIONS",
      headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, if-none-match" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(res.headers.get("Access-Control-Allow-Methods")).toContain("POST");
    expect(res.headers.get("Access-Control-Allow-Headers")).toMatch(/^content-type, ?if-none-match$/);
  });

  it("lets the page read the bulk answer's ETag", async () => {
    await seed("static", RULES.static!);
    const res = await bulk({ context: {} }, { Origin: origin });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(res.headers.get("Access-Control-Expose-Headers")).toContain("ETag");
  });

  it("lets the page read an error too (FLAG_NOT_FOUND)", async () => {
    const res = await call(`${SINGLE}/nope`, jsonInit("POST", { context: {} }, { Origin: origin }));
    expect(res.status).toBe(404);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
  });

  it("leaves the rest of the API without CORS", async () => {
    const res = await call("/api/features/static", { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "GET" } });
    expect(res.status).toBe(405);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});
