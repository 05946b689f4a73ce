/**
 * flagd definitions through the Worker's APIs: the write API (either form,
 * flagd's schema, pages of a document), GET /api/features/:name's typed
 * answer, OFREP's typed answers and errors, and the bulk route's isolate copy.
 */
import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { flagKey } from "../src/contract";
import { admin, appClient, call, countingKv, errorOf, jsonInit } from "./helpers";

beforeEach(() => reset());

const BANNER = {
  state: "ENABLED",
  variants: { plain: "Welcome", gold: "Welcome back, gold member", beta: "Try the new checkout" },
  defaultVariant: "plain",
  targeting: { if: [{ $ref: "is_gold" }, "gold", { sem_ver: [{ var: "appVersion" }, ">=", "2.0.0"] }, "beta", null] },
  metadata: { owner: "growth" },
};
const IS_GOLD = { in: [{ var: "tier" }, ["gold", "platinum"]] };
const ofrep = (key: string, context: unknown, request = call) =>
  request(`/ofrep/v1/evaluate/flags/${key}`, jsonInit("POST", context === undefined ? {} : { context }));

describe("POST /api/features (a page of a flagd document)", () => {
  it("writes flags and evaluators, and a flag's $ref evaluates through the stored evaluator", async () => {
    const res = await call("/api/features", jsonInit("POST", { flags: { banner: BANNER }, $evaluators: { is_gold: IS_GOLD } }, admin));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ flags: 1, evaluators: 1, warnings: [] });
    const fresh = appClient({});
    expect(await (await ofrep("banner", { targetingKey: "u1", tier: "gold" }, fresh)).json()).toEqual({
      key: "banner", value: "Welcome back, gold member", variant: "gold", reason: "TARGETING_MATCH", metadata: { owner: "growth" },
    });
  });

  it("writes nothing when one definition is invalid, and names it and the path", async () => {
    const bad = { ...BANNER, targeting: { sem_ver: [{ var: "v" }, "===", "1.0.0"] } };
    const res = await call("/api/features", jsonInit("POST", { flags: { ok: BANNER, broken: bad } }, admin));
    expect(await errorOf(res)).toMatchObject({ status: 400, code: "invalid_request", error: expect.stringContaining("flags.broken at /targeting/sem_ver/1") });
    expect(await env.CONFIG.get(flagKey("ok"))).toBeNull();
  });

  it("answers 409 for an evaluator declared in the stack config, and leaves it as it is when it comes back unchanged", async () => {
    await call("/api/features", jsonInit("POST", { flags: {}, $evaluators: { is_gold: IS_GOLD } }, admin));
    const managed = appClient({}, { MANAGED_FLAGS: "$is_gold" });
    const changed = await managed("/api/features", jsonInit("POST", { flags: {}, $evaluators: { is_gold: { "==": [1, 1] } } }, admin));
    expect(await errorOf(changed)).toMatchObject({ status: 409, code: "managed_by_config", error: expect.stringContaining("evaluator is_gold") });
    // The same rule written with its keys in another order is the same rule.
    await call("/api/features", jsonInit("POST", { flags: { banner: BANNER } }, admin));
    const reordered = Object.fromEntries(Object.entries(BANNER).reverse());
    const same = await managed("/api/features", jsonInit("POST", { flags: {}, $evaluators: { is_gold: IS_GOLD } }, admin));
    expect((await appClient({}, { MANAGED_FLAGS: "banner" })("/api/features", jsonInit("POST", { flags: { banner: reordered } }, admin))).status).toBe(200);
    expect(await same.json()).toEqual({ flags: 0, evaluators: 0, warnings: [] });
    expect(JSON.parse((await env.CONFIG.get("evaluator:is_gold"))!)).toEqual(IS_GOLD);
  });

  it("answers 400 for an unknown format or lenient value", async () => {
    expect((await errorOf(await call("/api/features?format=yaml", { headers: admin }))).status).toBe(400);
    expect((await errorOf(await call("/api/features?lenient=yes", jsonInit("POST", { flags: {} }, admin)))).status).toBe(400);
  });

  it("answers 409 for a flag declared in the stack config", async () => {
    const managed = appClient({}, { MANAGED_FLAGS: "banner" });
    const res = await managed("/api/features", jsonInit("POST", { flags: { banner: BANNER } }, admin));
    expect((await errorOf(res)).status).toBe(409);
  });
});

describe("PUT and GET /api/features/:name with a flagd definition", () => {
  it("stores it and answers value and variant for the user", async () => {
    await call("/api/features", jsonInit("POST", { flags: {}, $evaluators: { is_gold: IS_GOLD } }, admin));
    expect((await call("/api/features/banner", jsonInit("PUT", BANNER, admin))).status).toBe(200);
    const answer = await (await appClient({})("/api/features/banner?userId=u1")).json();
    expect(answer).toEqual({ name: "banner", enabled: true, reason: "DEFAULT", value: "Welcome", variant: "plain" });
  });

  it("reads a flag with a $ref once (flag and evaluator), then evaluates it with no KV operation while it is trusted", async () => {
    await call("/api/features", jsonInit("POST", { flags: { banner: BANNER }, $evaluators: { is_gold: IS_GOLD } }, admin));
    const { kv, calls } = countingKv(env.CONFIG);
    const request = appClient({}, { CONFIG: kv });
    const value = async (tier: string) => (await (await request(`/ofrep/v1/evaluate/flags/banner`, jsonInit("POST", { context: { tier } }))).json<{ value: string }>()).value;
    expect(await value("gold")).toBe("Welcome back, gold member");
    expect(calls).toEqual(["get flag:banner", "get evaluator:is_gold"]);
    for (let i = 0; i < 50; i++) await request(`/api/features/banner?userId=u${i}`);
    expect(await value("silver")).toBe("Welcome");
    expect(calls).toHaveLength(2);
  });

  it("answers 400 naming the flag and the path, and writes nothing", async () => {
    const res = await call("/api/features/banner", jsonInit("PUT", { ...BANNER, defaultVariant: "missing" }, admin));
    expect(await errorOf(res)).toMatchObject({ status: 400, code: "invalid_request", error: "flags.banner at /defaultVariant: must be null or the name of one of the variants" });
    expect(await env.CONFIG.get(flagKey("banner"))).toBeNull();
  });

  it("keeps today's answer for a boolean flagd flag, with its variant", async () => {
    await call("/api/features/dark", jsonInit("PUT", { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "off" }, admin));
    expect(await (await call("/api/features/dark")).json()).toEqual({ name: "dark", enabled: false, reason: "STATIC", value: false, variant: "off" });
  });
});

describe("OFREP with flagd definitions", () => {
  beforeEach(async () => {
    await call("/api/features", jsonInit("POST", {
      flags: {
        banner: BANNER,
        off: { ...BANNER, state: "DISABLED" },
        broken: { state: "ENABLED", variants: { a: 1 }, defaultVariant: "a", targeting: { if: [true, "zzz", "a"] } },
      },
      $evaluators: { is_gold: IS_GOLD },
    }, admin));
  });

  it("answers typed values from any context attribute", async () => {
    const res = await ofrep("banner", { targetingKey: "u2", appVersion: "2.1.0" }, appClient({}));
    expect(await res.json()).toMatchObject({ value: "Try the new checkout", variant: "beta", reason: "TARGETING_MATCH" });
  });

  it("evaluates a request without a body or without context with an empty context, as flagd does", async () => {
    const request = appClient({});
    const empty = await request("/ofrep/v1/evaluate/flags/banner", { method: "POST" });
    expect(await empty.json()).toMatchObject({ value: "Welcome", reason: "DEFAULT" });
    expect(await (await request("/ofrep/v1/evaluate/flags/banner", jsonInit("POST", {}))).json()).toMatchObject({ value: "Welcome", reason: "DEFAULT" });
  });

  it("answers DISABLED without a value (the caller's default), and GENERAL 500 for a variant the flag lacks", async () => {
    const request = appClient({});
    expect(await (await ofrep("off", {}, request)).json()).toEqual({ key: "off", reason: "DISABLED", metadata: { owner: "growth" } });
    const broken = await ofrep("broken", {}, request);
    expect(broken.status).toBe(500);
    expect(await broken.json()).toMatchObject({ key: "broken", errorCode: "GENERAL" });
  });

  it("evaluates every flag for bulk callers from one KV list per trust window per isolate, and drops its copy on a write", async () => {
    let now = Date.now();
    const { kv, calls } = countingKv(env.CONFIG);
    const request = appClient({ now: () => now }, { CONFIG: kv });
    const bulk = async () => (await request("/ofrep/v1/evaluate/flags", jsonInit("POST", { context: { tier: "gold" } }))).json<{ flags: { key: string; value?: unknown }[] }>();
    const first = await bulk();
    expect(first.flags.find((f) => f.key === "banner")?.value).toBe("Welcome back, gold member");
    for (let i = 0; i < 20; i++) await bulk();
    // One list of flags and, since a flag refers to one, one of evaluators.
    expect(calls.filter((c) => c.startsWith("list"))).toHaveLength(2);
    now += 30_001;
    await bulk();
    expect(calls.filter((c) => c.startsWith("list"))).toHaveLength(4);
    await request("/api/features/banner", { method: "DELETE", headers: admin });
    expect((await bulk()).flags.map((f) => f.key)).not.toContain("banner");
  });
});
