import { reset } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, appFetch, BASE } from "../helpers";
import { type AppRoute, appRoutes, expectEnvelope, kvSnapshot } from "./harness";

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * OpenFeature's remote evaluation protocol reads flags with POST (the context
 * is a body); these are evaluations, public like GET /api/features/:name.
 */
const PUBLIC_EVALUATION = /^\/ofrep\/v1\/evaluate\//;

/**
 * Routes that must refuse an anonymous caller, derived from what the app
 * registers: every mutating route, and every listing route (a GET on a
 * collection, i.e. a path that also has a `/:param` child).
 */
function protectedRoutes(routes: AppRoute[]): AppRoute[] {
  const isCollection = (path: string) => routes.some((r) => r.path.startsWith(`${path}/:`));
  return routes.filter(
    (r) => (MUTATING.has(r.method) && !PUBLIC_EVALUATION.test(r.path)) || (r.method === "GET" && !r.path.includes(":") && isCollection(r.path)),
  );
}

/** A concrete URL for a route pattern; the value fits every id and name pattern in the contract. */
const urlFor = (path: string) => `${BASE}${path.replace(/:\w+/g, "a".repeat(32))}`;

const ROUTES = protectedRoutes(appRoutes());
const BAD_CREDENTIALS: [string, Record<string, string>][] = [
  ["no token", {}],
  ["a wrong token", { Authorization: "Bearer wrong-token" }],
  ["the admin token with a character more", { Authorization: `Bearer ${ADMIN_TOKEN}x` }],
  ["the admin token in another scheme", { Authorization: `Basic ${ADMIN_TOKEN}` }],
];

beforeAll(() => reset());

describe("auth coverage", () => {
  it("finds the mutating and listing routes in the app's route table", () => {
    // Seven today (sessions, cache, purge, flags); fewer means the enumeration broke.
    expect(ROUTES.length).toBeGreaterThanOrEqual(7);
    expect(ROUTES.some((r) => r.method === "GET")).toBe(true);
  });

  it("leaves OpenFeature's evaluation routes open, as GET /api/features/:name is", async () => {
    const evaluations = appRoutes().filter((r) => PUBLIC_EVALUATION.test(r.path));
    expect(evaluations.map((r) => `${r.method} ${r.path}`).sort()).toEqual(["POST /ofrep/v1/evaluate/flags", "POST /ofrep/v1/evaluate/flags/:key"]);
    for (const { method, path } of evaluations) {
      const res = await appFetch()(new Request(urlFor(path), { method, headers: { "Content-Type": "application/json" }, body: "{}" }));
      expect([200, 404]).toContain(res.status);
    }
  });

  describe.each(ROUTES)("$method $path", ({ method, path }) => {
    it.each(BAD_CREDENTIALS)("answers 401 JSON to %s and writes nothing", async (_what, headers) => {
      const before = await kvSnapshot();
      const res = await appFetch()(new Request(urlFor(path), { method, headers }));
      await expectEnvelope(res, 401, "unauthorized");
      expect(await kvSnapshot()).toEqual(before);
    });

    it("admits the admin token (so the 401 above is the token's doing)", async () => {
      const res = await appFetch()(new Request(urlFor(path), { method, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } }));
      expect(res.status).not.toBe(401);
    });

    it("stays closed when the Worker has no ADMIN_TOKEN", async () => {
      for (const authorization of ["", "Bearer ", "Bearer undefined", "Bearer null"]) {
        const res = await appFetch({}, { ADMIN_TOKEN: undefined })(new Request(urlFor(path), { method, headers: authorization ? { Authorization: authorization } : {} }));
        expect([401, 503]).toContain(res.status);
        await expectEnvelope(res);
      }
    });
  });
});
