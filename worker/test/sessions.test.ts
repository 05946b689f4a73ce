import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { beforeEach, describe, expect, it } from "vitest";
import { sessionKey, userSessionKey } from "../src/contract";
import type { AppEnv } from "../src/env";
import { validateSession } from "../src/index";
import { admin, appClient, call, countingKv, errorOf, jsonInit } from "./helpers";

beforeEach(() => reset());

const alice = { userId: "user-1", email: "alice@example.com", roles: ["editor"] };

async function createSession(body: object = alice): Promise<{ sessionId: string; expiresAt: string }> {
  const res = await call("/sessions", jsonInit("POST", body, admin));
  expect(res.status).toBe(201);
  return res.json();
}

describe("POST /sessions", () => {
  it("creates a session readable by its id, stored under session:<id> and indexed under its user, both with the TTL as KV expiry", async () => {
    const before = Date.now();
    const { sessionId, expiresAt } = await createSession({ ...alice, ttlSeconds: 3600 });
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Date.parse(expiresAt) - before).toBeGreaterThanOrEqual(3600_000 - 1000);
    expect(Date.parse(expiresAt) - before).toBeLessThanOrEqual(3600_000 + 1000);

    const res = await call(`/sessions/${sessionId}`);
    expect(res.status).toBe(200);
    const session = await res.json<Record<string, unknown>>();
    expect(session).toEqual({ ...alice, createdAt: expect.any(String), expiresAt });

    const { keys } = await env.SESSIONS.list();
    expect(keys.map((k) => k.name).sort()).toEqual([await sessionKey(sessionId), await userSessionKey(alice.userId, sessionId)].sort());
    for (const key of keys) {
      expect(key.expiration).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 3600 - 1);
      expect(key.expiration).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 3600 + 1);
    }
  });

  it("defaults to a 24 h TTL and no roles", async () => {
    const { sessionId, expiresAt } = await createSession({ userId: "u", email: "u@example.com" });
    const session = await (await call(`/sessions/${sessionId}`)).json<{ createdAt: string; roles: string[] }>();
    expect(Date.parse(expiresAt) - Date.parse(session.createdAt)).toBe(86_400_000);
    expect(session.roles).toEqual([]);
  });

  it("takes the default TTL from SESSION_TTL_SECONDS, clamped to KV's 60 s minimum", async () => {
    const request = appClient({}, { SESSION_TTL_SECONDS: "5" });
    const res = await request("/sessions", jsonInit("POST", alice, admin));
    const { sessionId, expiresAt } = await res.json<{ sessionId: string; expiresAt: string }>();
    const session = await (await call(`/sessions/${sessionId}`)).json<{ createdAt: string }>();
    expect(Date.parse(expiresAt) - Date.parse(session.createdAt)).toBe(60_000);
  });

  it.each([
    ["no Authorization header", {}],
    ["a wrong token", { Authorization: "Bearer not-the-token" }],
    ["the right token with another scheme", { Authorization: "Basic test-admin-token" }],
    ["a malformed header", { Authorization: "Bearer" }],
  ])("answers 401 unauthorized to %s and writes nothing", async (_, headers) => {
    const res = await call("/sessions", jsonInit("POST", alice, headers));
    expect(await errorOf(res)).toMatchObject({ status: 401, code: "unauthorized" });
    expect((await env.SESSIONS.list()).keys).toEqual([]);
  });

  it("answers 503 unavailable with Retry-After when no ADMIN_TOKEN is configured, even to a bearer token", async () => {
    const request = appClient({}, { ADMIN_TOKEN: undefined });
    for (const headers of [{}, { Authorization: "Bearer " }, { Authorization: "Bearer undefined" }] as Record<string, string>[]) {
      const res = await request("/sessions", jsonInit("POST", alice, headers));
      expect(res.headers.get("Retry-After")).toMatch(/^\d+$/);
      expect(await errorOf(res)).toMatchObject({ status: 503, code: "unavailable" });
    }
  });

  it.each([
    ["a missing userId", { email: "a@example.com" }, "userId"],
    ["an empty userId", { ...alice, userId: "" }, "userId"],
    ["a userId over 256 characters", { ...alice, userId: "u".repeat(257) }, "userId"],
    ["a numeric userId", { ...alice, userId: 42 }, "userId"],
    ["a missing email", { userId: "u" }, "email"],
    ["an invalid email", { ...alice, email: "not-an-email" }, "email"],
    ["roles that are not an array", { ...alice, roles: "admin" }, "roles"],
    ["a role that is not a string", { ...alice, roles: ["ok", 7] }, "roles.1"],
    ["a TTL under 60 s", { ...alice, ttlSeconds: 59 }, "ttlSeconds"],
    ["a TTL over 30 days", { ...alice, ttlSeconds: 2_592_001 }, "ttlSeconds"],
    ["a fractional TTL", { ...alice, ttlSeconds: 90.5 }, "ttlSeconds"],
    ["a TTL given as a string", { ...alice, ttlSeconds: "3600" }, "ttlSeconds"],
    ["an unknown field", { ...alice, role: ["admin"] }, "role"],
  ])("answers 400 invalid_request naming the field for %s", async (_, body, field) => {
    const res = await call("/sessions", jsonInit("POST", body, admin));
    const error = await errorOf(res);
    expect(error).toMatchObject({ status: 400, code: "invalid_request" });
    expect(error.error).toContain(`${field}:`);
    expect((await env.SESSIONS.list()).keys).toEqual([]);
  });

  it("says a missing field is required, as the schemas' own messages read", async () => {
    const error = await errorOf(await call("/sessions", jsonInit("POST", { userId: "u" }, admin)));
    expect(error.error).toBe("invalid request body: email: is required");
  });

  it.each([["a JSON array", "[]"], ["a JSON string", "\"alice\""], ["JSON null", "null"], ["a number", "7"]])(
    "answers 400 invalid_request asking for a JSON object when the body is %s",
    async (_, body) => {
      const res = await call("/sessions", { method: "POST", headers: { ...admin, "Content-Type": "application/json" }, body });
      const error = await errorOf(res);
      expect(error).toMatchObject({ status: 400, code: "invalid_request" });
      expect(error.error).toBe("request body must be a JSON object");
    },
  );

  it.each([
    ["malformed JSON", "{\"userId\": ", "application/json"],
    ["an empty body", "", "application/json"],
    ["a form body", "userId=u&email=u%40example.com", "application/x-www-form-urlencoded"],
  ])("answers 400 invalid_request to %s", async (_, body, contentType) => {
    const headers: Record<string, string> = { ...admin, ...(contentType ? { "Content-Type": contentType } : {}) };
    const res = await call("/sessions", { method: "POST", headers, body });
    expect(await errorOf(res)).toMatchObject({ status: 400, code: "invalid_request" });
  });

  it("asks for Content-Type: application/json when a JSON body comes without it", async () => {
    const res = await call("/sessions", { method: "POST", headers: { ...admin, "Content-Type": "text/plain" }, body: JSON.stringify(alice) });
    const error = await errorOf(res);
    expect(error).toMatchObject({ status: 400, code: "invalid_request" });
    expect(error.error).toContain("Content-Type: application/json");
  });

  it("answers 413 payload_too_large to a body over 16 KiB, declared or streamed", async () => {
    const big = JSON.stringify({ ...alice, userId: "u".repeat(16 * 1024) });
    const declared = await call("/sessions", { method: "POST", headers: { ...admin, "Content-Type": "application/json" }, body: big });
    expect(await errorOf(declared)).toMatchObject({ status: 413, code: "payload_too_large" });

    const stream = new Blob([big]).stream();
    const streamed = await appClient()("/sessions", {
      method: "POST",
      headers: { ...admin, "Content-Type": "application/json" },
      body: stream,
      // @ts-expect-error: needed by the Request constructor for a streamed body outside workerd's own fetch
      duplex: "half",
    });
    expect(await errorOf(streamed)).toMatchObject({ status: 413, code: "payload_too_large" });
  });
});

describe("GET /sessions/:id", () => {
  it("answers 404 not_found for an unknown id", async () => {
    const res = await call(`/sessions/${"a".repeat(32)}`);
    expect(await errorOf(res)).toMatchObject({ status: 404, code: "not_found" });
  });

  it.each([["too short", "abc"], ["too long", "a".repeat(33)], ["bad characters", `${"a".repeat(31)}*`]])(
    "answers 404 without reading KV for an id that cannot be a session id (%s)",
    async (_, id) => {
      const { kv, calls } = countingKv(env.SESSIONS);
      const res = await appClient({}, { SESSIONS: kv })(`/sessions/${encodeURIComponent(id)}`);
      expect(await errorOf(res)).toMatchObject({ status: 404, code: "not_found" });
      expect(calls).toEqual([]);
    },
  );

  it("reads a session with KV's minimum cacheTtl (30 s), so a logout reaches every location within about 30 s", async () => {
    const { sessionId } = await createSession(alice);
    const { kv, calls, options } = countingKv(env.SESSIONS);
    expect((await appClient({}, { SESSIONS: kv })(`/sessions/${sessionId}`)).status).toBe(200);
    expect(calls).toEqual([`get ${await sessionKey(sessionId)}`]);
    expect(options).toEqual([{ cacheTtl: 30 }]);
  });

  it("answers 404 once the session's TTL has passed, before KV has evicted it", async () => {
    const { sessionId } = await createSession({ ...alice, ttlSeconds: 60 });
    expect((await appClient({ now: () => Date.now() + 59_000 })(`/sessions/${sessionId}`)).status).toBe(200);
    const res = await appClient({ now: () => Date.now() + 61_000 })(`/sessions/${sessionId}`);
    expect(await errorOf(res)).toMatchObject({ status: 404, code: "not_found" });
  });

  it("answers 404 for a stored session whose explicit expiresAt is past", async () => {
    const id = "b".repeat(32);
    const past = { ...alice, createdAt: "2020-01-01T00:00:00.000Z", expiresAt: new Date(Date.now() - 1000).toISOString() };
    await env.SESSIONS.put(await sessionKey(id), JSON.stringify(past), { expirationTtl: 3600 });
    expect(await errorOf(await call(`/sessions/${id}`))).toMatchObject({ status: 404, code: "not_found" });
  });

  it("answers 404, not 500, for a corrupt stored value", async () => {
    const id = "c".repeat(32);
    await env.SESSIONS.put(await sessionKey(id), "{not json");
    expect(await errorOf(await call(`/sessions/${id}`))).toMatchObject({ status: 404, code: "not_found" });
    await env.SESSIONS.put(await sessionKey(id), JSON.stringify({ userId: 1 }));
    expect(await errorOf(await call(`/sessions/${id}`))).toMatchObject({ status: 404, code: "not_found" });
  });
});

describe("DELETE /sessions/:id", () => {
  it("lets a session end itself (logout) and answers 204 again when it is already gone", async () => {
    const { sessionId } = await createSession();
    const bearer = { Authorization: `Bearer ${sessionId}` };
    expect((await call(`/sessions/${sessionId}`, { method: "DELETE", headers: bearer })).status).toBe(204);
    expect((await call(`/sessions/${sessionId}`)).status).toBe(404);
    expect((await call(`/sessions/${sessionId}`, { method: "DELETE", headers: bearer })).status).toBe(204);
  });

  it("accepts the session cookie or the admin token", async () => {
    const first = await createSession();
    const byCookie = await call(`/sessions/${first.sessionId}`, { method: "DELETE", headers: { Cookie: `session=${first.sessionId}` } });
    expect(byCookie.status).toBe(204);
    const second = await createSession();
    expect((await call(`/sessions/${second.sessionId}`, { method: "DELETE", headers: admin })).status).toBe(204);
    expect((await env.SESSIONS.list()).keys).toEqual([]);
  });

  it("answers 401 and keeps the session without a credential or with another session's id", async () => {
    const { sessionId } = await createSession();
    const other = await createSession();
    for (const headers of [{}, { Authorization: `Bearer ${other.sessionId}` }, { Cookie: `session=${other.sessionId}` }] as Record<string, string>[]) {
      const res = await call(`/sessions/${sessionId}`, { method: "DELETE", headers });
      expect(await errorOf(res)).toMatchObject({ status: 401, code: "unauthorized" });
    }
    expect((await call(`/sessions/${sessionId}`)).status).toBe(200);
  });
});

describe("validateSession middleware", () => {
  function protectedApp(now?: () => number) {
    const app = new Hono<AppEnv>();
    app.get("/me", validateSession({ now }), (c) => c.json(c.var.session));
    app.onError((err) => Response.json({ error: err.message }, { status: "status" in err ? (err.status as number) : 500 }));
    return (headers: Record<string, string>, sessions: KVNamespace = env.SESSIONS) =>
      app.fetch(new Request("http://worker.test/me", { headers }), { ...env, SESSIONS: sessions });
  }

  it("admits a bearer session id and sets the session on the context", async () => {
    const { sessionId } = await createSession();
    const res = await protectedApp()({ Authorization: `Bearer ${sessionId}` });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ...alice, sessionId });
  });

  it("admits a session cookie", async () => {
    const { sessionId } = await createSession();
    const res = await protectedApp()({ Cookie: `theme=dark; session=${sessionId}` });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ userId: alice.userId, sessionId });
  });

  it("answers 401 without a session, or with an unknown one", async () => {
    expect((await protectedApp()({})).status).toBe(401);
    expect((await protectedApp()({ Authorization: `Bearer ${"z".repeat(32)}` })).status).toBe(401);
  });

  it("answers 401 for an expired session", async () => {
    const { sessionId } = await createSession({ ...alice, ttlSeconds: 60 });
    const res = await protectedApp(() => Date.now() + 61_000)({ Authorization: `Bearer ${sessionId}` });
    expect(res.status).toBe(401);
  });

  it("answers 401 without reading KV for a value that cannot be a session id", async () => {
    const { kv, calls } = countingKv(env.SESSIONS);
    expect((await protectedApp()({ Cookie: "session=short" }, kv)).status).toBe(401);
    expect(calls).toEqual([]);
  });
});
