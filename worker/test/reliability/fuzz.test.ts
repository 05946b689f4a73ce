import { reset } from "cloudflare:test";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { env } from "cloudflare:workers";
import { decodeFlag, decodeSession, encodeFlag, flagKey, KEY_PREFIX } from "../../src/contract";
import { ADMIN_TOKEN, appFetch, BASE } from "../helpers";
import { appRoutes, expectError, kvSnapshot } from "./harness";

/** The contract's body limit: anything larger is a 413. */
const MAX_BODY_BYTES = 16 * 1024;
/** Per property; enough to reach every branch in a few seconds. */
const RUNS = 300;
/** The routes that take a JSON body, fuzzed with the admin token so bodies get past authentication. */
const JSON_ROUTES = ["POST /sessions", "PUT /api/features/:name", "POST /ofrep/v1/evaluate/flags/:key", "POST /ofrep/v1/evaluate/flags"];
/** OFREP's body has one small schema (a context) and writes nothing: fewer runs reach all of it. */
const runsFor = (route: string) => (route.includes(" /ofrep/") ? 60 : RUNS);

// ---------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------

const unicode = fc.string({ unit: "binary", maxLength: 40 });
const overlong = fc.integer({ min: 129, max: 1200 }).map((n) => "k".repeat(n));
const tricky = fc.constantFrom("__proto__", "constructor", "prototype", "..", ".", "%2e%2e", "%00", "%ff", "%", "\uD800", "a/b", "null", "undefined", " ", "");

/** A path parameter: valid-looking ids and names, or junk (raw or percent-encoded). */
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("s".repeat(32), "p1", "checkout", "bench-flag-000", "a".repeat(128)) },
  fc.stringMatching(/^[A-Za-z0-9_.:-]{1,140}$/),
  unicode.map(encodeURIComponent),
  unicode,
  overlong,
  tricky,
);

const ROUTES = appRoutes();
const method = fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PURGE");
const randomPath = fc
  .array(fc.oneof(segment, fc.constantFrom("api", "sessions", "features", "products", "cache", "ofrep", "v1", "evaluate", "flags")), { maxLength: 6 })
  .map((s) => `/${s.join("/")}`);

/** Replaces each `:param` with a value: encoded when it would otherwise change the path's shape. */
function fill(pattern: string, values: string[]): string {
  let i = 0;
  return pattern.replace(/:\w+/g, () => {
    const value = values[i++ % values.length]!;
    return /[/?#]/.test(value) ? encodeURIComponent(value) : value;
  });
}

const query = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom("prefix", "cursor", "userId"), fc.string({ maxLength: 8 }), tricky), fc.oneof(fc.constantFrom("product:", "flag:", "session:", ""), unicode, overlong, tricky)), { maxLength: 3 })
  .map((pairs) => (pairs.length ? `?${new URLSearchParams(pairs)}` : ""));

const headers = fc.record(
  {
    authorization: fc.oneof(
      { weight: 3, arbitrary: fc.constant(`Bearer ${ADMIN_TOKEN}`) },
      { weight: 1, arbitrary: fc.constantFrom("Bearer ", "Bearer wrong", `bearer ${ADMIN_TOKEN}`, `Bearer ${"s".repeat(32)}`, "Basic x") },
      { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 80 }).map((s) => `Bearer ${s}`) },
    ),
    contentType: fc.oneof({ weight: 5, arbitrary: fc.constant("application/json") }, fc.constantFrom("application/json; charset=utf-8", "application/merge-patch+json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data")),
    cookie: fc.oneof(fc.constant(`session=${"s".repeat(32)}`), fc.string({ unit: "grapheme-ascii", maxLength: 60 })),
    other: fc.tuple(
      fc.oneof(fc.constantFrom("accept", "x-forwarded-for", "if-none-match", "origin", "x-http-method-override", "transfer-encoding-ish"), fc.stringMatching(/^x-[a-z0-9-]{1,30}$/)),
      fc.string({ unit: "grapheme-ascii", maxLength: 2000 }),
    ),
  },
  { requiredKeys: [] },
);

/** Bodies that come close to a valid session or flag, with wrong types and extra keys mixed in. */
const anyValue = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.object({ maxDepth: 1 }));
const nearSession = fc.record(
  { userId: fc.oneof(fc.string({ maxLength: 300 }), anyValue), email: fc.oneof(fc.emailAddress(), unicode, anyValue), roles: fc.oneof(fc.array(fc.string({ maxLength: 70 }), { maxLength: 40 }), anyValue), ttlSeconds: fc.oneof(fc.integer({ min: -10, max: 3_000_000 }), fc.double(), anyValue) },
  { requiredKeys: [] },
);
const nearFlag = fc.record(
  { enabled: fc.oneof(fc.boolean(), anyValue), percentage: fc.oneof(fc.double({ min: -1, max: 101 }), anyValue), allowedUsers: fc.oneof(fc.array(unicode, { maxLength: 5 }), anyValue), metadata: fc.oneof(fc.object(), anyValue), percentge: anyValue },
  { requiredKeys: [] },
);
const validSession = fc.record(
  { userId: fc.string({ minLength: 1, maxLength: 256 }), email: fc.stringMatching(/^[a-z0-9]{1,12}(\.[a-z0-9]{1,8})?@[a-z0-9]{1,12}\.[a-z]{2,6}$/), roles: fc.array(fc.string({ minLength: 1, maxLength: 64 }), { maxLength: 32 }), ttlSeconds: fc.integer({ min: 60, max: 2_592_000 }) },
  { requiredKeys: ["userId", "email"] },
);
const validFlag = fc.record(
  { enabled: fc.boolean(), percentage: fc.double({ min: 0, max: 100, noNaN: true }), allowedUsers: fc.array(fc.string({ minLength: 1, maxLength: 256 }), { maxLength: 20 }), metadata: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })) },
  { requiredKeys: ["enabled"] },
);
/** OFREP evaluation requests: a context with a targetingKey of any type and attributes. */
const nearEvaluation = fc.record(
  { context: fc.oneof({ weight: 3, arbitrary: fc.record({ targetingKey: fc.oneof(fc.string({ maxLength: 300 }), anyValue), email: anyValue }, { requiredKeys: [] }) }, anyValue) },
  { requiredKeys: [] },
);
const withExtraKey = (base: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(base, fc.option(fc.tuple(fc.oneof(tricky, fc.string({ maxLength: 10 })), anyValue))).map(([body, extra]) => {
    const text = JSON.stringify(body);
    // JSON text, not an object literal, so that "__proto__" arrives as an own key the way a client would send it.
    return extra ? `${text.slice(0, -1)}${text.length > 2 ? "," : ""}${JSON.stringify(extra[0])}:${JSON.stringify(extra[1])}}` : text;
  });

const body = fc.oneof(
  { weight: 3, arbitrary: withExtraKey(fc.oneof(validSession, nearSession)) },
  { weight: 3, arbitrary: withExtraKey(fc.oneof(validFlag, nearFlag)) },
  { weight: 2, arbitrary: withExtraKey(nearEvaluation) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  fc.constantFrom("", "{", "}", "[", "nul", "{'a':1}", '{"a":1,}', "\u0000", "\uFEFF{}", '{"userId":"u","email":"a@b.co"}{}'),
  fc.integer({ min: 1, max: 5000 }).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`),
  fc.integer({ min: 1, max: 2700 }).map((n) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`),
  fc.integer({ min: MAX_BODY_BYTES - 40, max: MAX_BODY_BYTES + 40 }).map((n) => JSON.stringify({ userId: "x".repeat(n), email: "a@b.co" })),
  fc.integer({ min: MAX_BODY_BYTES, max: 4 * MAX_BODY_BYTES }).map((n) => JSON.stringify({ enabled: true, metadata: { note: "é".repeat(n / 2) } })),
  fc.constantFrom(
    '{"__proto__":{"polluted":true},"userId":"u","email":"a@b.co"}',
    '{"constructor":{"prototype":{"polluted":true}},"enabled":true}',
    '{"enabled":true,"metadata":{"__proto__":{"polluted":true}}}',
  ),
);

const optionalBody = fc.option(body, { freq: 4 });

interface Fuzzed {
  method: string;
  path: string;
  query: string;
  headers: { authorization?: string; contentType?: string; cookie?: string; other?: [string, string] };
  body: string | null;
}

/** Mostly a registered route with its own method (so requests get past routing), sometimes anything at all. */
const request: fc.Arbitrary<Fuzzed> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        route: fc.constantFrom(...ROUTES),
        values: fc.array(segment, { minLength: 3, maxLength: 3 }),
        otherMethod: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, method),
        query,
        headers,
        body: optionalBody,
      })
      .map(({ route, values, otherMethod, ...rest }) => ({ method: otherMethod ?? route.method, path: fill(route.path, values), ...rest })),
  },
  { weight: 1, arbitrary: fc.record({ method, path: randomPath, query, headers, body: optionalBody }) },
);

function toRequest({ method, path, query, headers, body }: Fuzzed): Request {
  const init: RequestInit & { headers: Record<string, string> } = { method, headers: {} };
  if (headers.authorization !== undefined) init.headers.Authorization = headers.authorization;
  if (headers.contentType !== undefined) init.headers["Content-Type"] = headers.contentType;
  if (headers.cookie !== undefined) init.headers.Cookie = headers.cookie;
  if (headers.other !== undefined) init.headers[headers.other[0]] = headers.other[1];
  if (body !== null && method !== "GET" && method !== "HEAD") init.body = body;
  return new Request(`${BASE}${path}${query}`, init);
}

// ---------------------------------------------------------------------------

let fetchApp: ReturnType<typeof appFetch>;
beforeAll(() => {
  // The origin answers every product, so any 5xx would come from the Worker itself.
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => Response.json({ id: "fuzz", name: "fuzzed product" }));
  // Rejected input is logged by design; keep the output readable.
  vi.spyOn(console, "error").mockImplementation(() => {});
  fetchApp = appFetch();
});
beforeEach(() => reset());
afterAll(() => vi.restoreAllMocks());

/** The properties every answer has; returns the response's status. */
async function check(input: Fuzzed): Promise<number> {
  const before = await kvSnapshot();
  const req = toRequest(input);
  const bodyBytes = req.body ? (await req.clone().arrayBuffer()).byteLength : 0;
  const res = await fetchApp(req);
  expect(res.status).toBeLessThan(500);
  if (bodyBytes > MAX_BODY_BYTES) expect(res.status).toBe(413);
  if (res.status === 304) expect(await res.text()).toBe("");
  // The path the Worker saw: the URL parser folds dot segments ("/./ofrep/x" is "/ofrep/x", answered in OFREP's shape).
  else if (res.status >= 300 && input.method !== "HEAD") await expectError(new URL(req.url).pathname, res);
  else await res.arrayBuffer();
  const after = await kvSnapshot();
  if (res.status >= 400) expect(after).toEqual(before);
  // What an accepted write stored must read back as valid data.
  for (const [key, value] of Object.entries(after)) {
    if (before[key] === value || value === null) continue;
    if (key.startsWith(`SESSIONS ${KEY_PREFIX.session}`)) expect(decodeSession(value)).toBeDefined();
    if (key.startsWith(`CONFIG ${KEY_PREFIX.flag}`)) expect(decodeFlag(value)).toBeDefined();
  }
  // No body, however crafted, reaches the prototype chain.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  return res.status;
}

describe("fuzzing every route", () => {
  it(`fuzzes the ${ROUTES.length} registered routes (the enumeration found them)`, () => {
    expect(ROUTES.length).toBeGreaterThanOrEqual(10);
  });

  it("answers any request below 500, with the JSON envelope on every error, writing nothing when it rejects", async () => {
    await fc.assert(fc.asyncProperty(request, async (input) => void (await check(input))), { numRuns: RUNS });
  }, 120_000);

  it.each(JSON_ROUTES)("holds for any body sent to %s with the admin token", async (route) => {
    expect(ROUTES.map((r) => `${r.method} ${r.path}`)).toContain(route);
    const [method, pattern] = route.split(" ") as [string, string];
    const statuses = new Set<number>();
    // A flag to evaluate, so that OFREP's single-flag route can answer 200 too.
    const { value, metadata } = encodeFlag({ enabled: true });
    await env.CONFIG.put(flagKey("checkout"), value, { metadata });
    const admitted = { authorization: `Bearer ${ADMIN_TOKEN}`, contentType: "application/json" };
    const input = fc
      .record({ name: fc.oneof(fc.constant("checkout"), segment), body })
      .map(({ name, body }): Fuzzed => ({ method, path: fill(pattern, [name]), query: "", headers: admitted, body }));
    await fc.assert(fc.asyncProperty(input, async (i) => void statuses.add(await check(i))), { numRuns: runsFor(route) });
    // Both sides of validation were reached, or the generators have drifted from the schemas.
    expect([...statuses].some((s) => s < 300)).toBe(true);
    expect(statuses).toContain(400);
  }, 120_000);
});
