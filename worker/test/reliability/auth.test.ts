import { reset } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, appFetch, BASE } from "../helpers";
import { ADMIN_SCOPES } from "../../src/contract";
import { OPERATIONS } from "../../src/openapi";
import { type AppRoute, appRoutes, expectEnvelope, kvSnapshot, routeScopes } from "./harness";

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
const SCOPED = routeScopes();

/** One named token per scope, and for each scope one holding every other scope. */
const only = (scope: string) => `only-${scope.replace(":", "-")}-test-token`;
const allBut = (scope: string) => `all-but-${scope.replace(":", "-")}-test-token`;
const ADMIN_TOKENS = JSON.stringify(
  ADMIN_SCOPES.flatMap((scope) => [
    { name: `only-${scope.replace(":", "-")}`, token: only(scope), scopes: [scope] },
    { name: `all-but-${scope.replace(":", "-")}`, token: allBut(scope), scopes: ADMIN_SCOPES.filter((s) => s !== scope) },
  ]),
);
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

  describe("scopes", () => {
    it("has a scope declared in the route table for every route that refuses an anonymous caller", () => {
      const scoped = new Set(SCOPED.map((r) => `${r.method} ${r.path}`));
      expect(ROUTES.filter((r) => !scoped.has(`${r.method} ${r.path}`))).toEqual([]);
      expect(new Set(SCOPED.map((r) => r.scope))).toEqual(new Set(ADMIN_SCOPES));
    });

    it("documents in OpenAPI the scope each route declares", () => {
      const documented = OPERATIONS.filter((op) => op.scope).map((op) => `${op.method.toUpperCase()} ${op.path} ${op.scope}`);
      expect(documented.sort()).toEqual(SCOPED.map((r) => `${r.method} ${r.path} ${r.scope}`).sort());
    });

    describe.each(SCOPED)("$method $path requires $scope", ({ method, path, scope }) => {
      it("answers 403 insufficient_scope, naming the scope, to a token holding every other scope, and writes nothing", async () => {
        const before = await kvSnapshot();
        const res = await appFetch({}, { ADMIN_TOKENS })(new Request(urlFor(path), { method, headers: { Authorization: `Bearer ${allBut(scope)}` } }));
        expect(res.headers.get("WWW-Authenticate")).toBe(`Bearer error="insufficient_scope", scope="${scope}"`);
        await expectEnvelope(res, 403, "insufficient_scope");
        expect(await kvSnapshot()).toEqual(before);
      });

      it("admits a token holding only that scope", async () => {
        const res = await appFetch({}, { ADMIN_TOKENS })(new Request(urlFor(path), { method, headers: { Authorization: `Bearer ${only(scope)}` } }));
        expect([401, 403, 503]).not.toContain(res.status);
      });
    });

    it("refuses every scoped route when ADMIN_TOKENS is malformed, with a 503 that shows no token", async () => {
      const bad = JSON.stringify([{ name: "ci", token: "short-secret", scopes: ["cache:purge"] }]);
      const res = await appFetch({}, { ADMIN_TOKENS: bad })(new Request(urlFor("/api/cache"), { method: "DELETE", headers: { Authorization: "Bearer short-secret" } }));
      const body = await expectEnvelope(res, 503, "unavailable");
      expect(body.error).toContain("ADMIN_TOKENS");
      expect(body.error).not.toContain("short-secret");
    });
  });
});
