import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { nanoid } from "nanoid";
import { beforeEach, describe, expect, it } from "vitest";
import { KEY_PREFIX, type SessionRecord, legacySessionKey, sessionKey, userSessionKey, userSessionPrefix } from "../src/contract";
import type { AppOptions } from "../src/app";
import type { AppEnv, Env } from "../src/env";
import { validateSession } from "../src/index";
import { REVOKE_PAGE_SIZE, sessionStore } from "../src/stores/sessions";
import { admin, appClient, countingKv, errorOf, jsonInit, withFaults } from "./helpers";
import { memoryKv } from "./memory-kv";

beforeEach(() => reset());

const HOUR = 3_600_000;
const alice = { userId: "alice", email: "alice@example.com" };
const bob = { userId: "bob", email: "bob@example.com" };

type Client = ReturnType<typeof appClient>;
type Listing = { sessions: { sessionIdPrefix: string; createdAt: string; expiresAt: string; lastSeenAt?: string }[]; cursor?: string };
type RevokePage = { revoked: number; complete: boolean; cursor?: string };

/** An app whose clock stands `offsetMs` from the real one; `overrides` alter its bindings. */
const at = (offsetMs: number, overrides: Partial<Env> = {}, options: AppOptions = {}) =>
  appClient({ now: () => Date.now() + offsetMs, ...options }, overrides);

async function create(request: Client, body: object): Promise<string> {
  const res = await request("/sessions", jsonInit("POST", body, admin));
  expect(res.status).toBe(201);
  return (await res.json<{ sessionId: string }>()).sessionId;
}

const refresh = (request: Client, id: string, headers: Record<string, string> = { Authorization: `Bearer ${id}` }) =>
  request(`/sessions/${id}/refresh`, { method: "POST", headers });

/** Every page of a user's listing, with the raw bodies (to look for leaked ids). */
async function listAll(request: Client, userId: string) {
  const bodies: string[] = [];
  const sessions: Listing["sessions"] = [];
  let cursor: string | undefined;
  do {
    const res = await request(`/users/${encodeURIComponent(userId)}/sessions${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`, { headers: admin });
    expect(res.status).toBe(200);
    const text = await res.text();
    bodies.push(text);
    const page = JSON.parse(text) as Listing;
    sessions.push(...page.sessions);
    cursor = page.cursor;
  } while (cursor);
  return { sessions, bodies };
}

/** Calls DELETE /users/:id/sessions until complete; returns the pages. */
async function revokeAll(request: Client, userId: string): Promise<RevokePage[]> {
  const pages: RevokePage[] = [];
  let cursor: string | undefined;
  do {
    const res = await request(`/users/${encodeURIComponent(userId)}/sessions${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`, { method: "DELETE", headers: admin });
    expect(res.status).toBe(200);
    const page = await res.json<RevokePage>();
    pages.push(page);
    cursor = page.cursor;
    expect(page.complete).toBe(cursor === undefined);
  } while (cursor);
  return pages;
}

/** Many sessions of one user, written through the store (the same two writes as POST /sessions) in parallel. */
async function seed(userId: string, count: number, kv: KVNamespace = env.SESSIONS): Promise<string[]> {
  const store = sessionStore(kv, 10_000);
  const now = Date.now();
  const record: SessionRecord = {
    userId,
    email: `${userId}@example.com`,
    roles: [],
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + HOUR).toISOString(),
    ttlSeconds: 3600,
  };
  const ids = Array.from({ length: count }, () => nanoid(32));
  for (let i = 0; i < ids.length; i += 250) await Promise.all(ids.slice(i, i + 250).map((id) => store.create(id, record, now)));
  return ids;
}

/** Every encoding a listing could smuggle an id in: raw, base64 and base64url of the text, and decoded cursors. */
function leaks(text: string, id: string): boolean {
  const decoded = [text, ...[...text.matchAll(/"cursor":"([^"]+)"/g)].map((m) => safeAtob(m[1]!))];
  return decoded.some((t) => t.includes(id) || t.includes(btoa(id)) || t.includes(btoa(id).replace(/\+/g, "-").replace(/\//g, "_")));
}
const safeAtob = (s: string) => {
  try {
    return atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    return "";
  }
};

describe("GET /users/:userId/sessions", () => {
  it("lists a user's live sessions from the index alone, one KV list and no reads, without full ids", async () => {
    const request = at(0);
    const ids = [await create(request, alice), await create(request, { ...alice, ttlSeconds: 60 }), await create(request, alice)];
    await create(request, bob);
    const { kv, calls } = countingKv(env.SESSIONS);
    const res = await at(0, { SESSIONS: kv })(`/users/alice/sessions`, { headers: admin });
    const text = await res.text();
    const listing = JSON.parse(text) as Listing;
    expect(calls).toEqual([expect.stringMatching(/^list /)]);
    expect(listing.cursor).toBeUndefined();
    expect(listing.sessions.map((s) => s.sessionIdPrefix).sort()).toEqual(ids.map((id) => id.slice(0, 8)).sort());
    for (const s of listing.sessions) expect(Object.keys(s).sort()).toEqual(["createdAt", "expiresAt", "sessionIdPrefix"]);
    for (const id of ids) expect(leaks(text, id)).toBe(false);

    // Past the short session's expiry, before KV would evict it: listed no more.
    const later = await (await at(61_000)("/users/alice/sessions", { headers: admin })).json<Listing>();
    expect(later.sessions).toHaveLength(2);
  });

  it("answers an empty list for a user without sessions, and 400 to a bad cursor", async () => {
    expect(await (await at(0)("/users/nobody/sessions", { headers: admin })).json()).toEqual({ sessions: [] });
    const res = await at(0)(`/users/nobody/sessions?cursor=${"c".repeat(1025)}`, { headers: admin });
    expect(await errorOf(res)).toMatchObject({ status: 400, code: "invalid_request" });
  });

  it("keeps users whose ids prefix one another apart (keys hold hashes of the ids), and takes any user id percent-encoded", async () => {
    const request = at(0);
    await create(request, { ...alice, userId: "u" });
    const other = await create(request, { ...alice, userId: "u:x" });
    const listing = await (await request("/users/u%3Ax/sessions", { headers: admin })).json<Listing>();
    expect(listing.sessions.map((s) => s.sessionIdPrefix)).toEqual([other.slice(0, 8)]);
    const slashed = await create(request, { ...alice, userId: "team/a b%" });
    const byPath = await (await request(`/users/${encodeURIComponent("team/a b%")}/sessions`, { headers: admin })).json<Listing>();
    expect(byPath.sessions.map((s) => s.sessionIdPrefix)).toEqual([slashed.slice(0, 8)]);
  });
});

describe("DELETE /users/:userId/sessions (sign out everywhere)", () => {
  it("revokes 2,500 sessions over several bounded calls, lists them without full ids first, and leaves other users alone", async () => {
    // In-memory KV for scale (memory-kv.ts says why); the next test runs the same on real local KV with small pages.
    const memory = memoryKv();
    const ids = await seed("alice", 2500, memory);
    const { kv, calls } = countingKv(memory);
    const request = at(0, { SESSIONS: kv });
    const bobs = [await create(request, bob), await create(request, bob)];

    const listed = await listAll(request, "alice");
    expect(listed.bodies).toHaveLength(3);
    expect(listed.sessions).toHaveLength(2500);
    for (const body of listed.bodies) for (const id of ids) expect(leaks(body, id)).toBe(false);

    // Each call stays under the 1000-operations limit (local workerd does not enforce it: count).
    const pages: RevokePage[] = [];
    let cursor: string | undefined;
    do {
      const before = calls.length;
      const res = await request(`/users/alice/sessions${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`, { method: "DELETE", headers: admin });
      pages.push(await res.json<RevokePage>());
      expect(calls.length - before).toBeLessThanOrEqual(1000);
      cursor = pages.at(-1)!.cursor;
    } while (cursor);
    expect(pages.length).toBe(Math.ceil(2500 / REVOKE_PAGE_SIZE));
    expect(pages.reduce((sum, p) => sum + p.revoked, 0)).toBe(2500);
    expect(pages.at(-1)?.complete).toBe(true);

    expect(memory.size()).toBe(4); // bob's two sessions and their index entries
    for (const id of ids.filter((_, i) => i % 100 === 0)) expect((await request(`/sessions/${id}`)).status).toBe(404);
    for (const id of bobs) expect((await request(`/sessions/${id}`)).status).toBe(200);
    expect((await listAll(request, "bob")).sessions).toHaveLength(2);
  });

  it("revokes page by page on real local KV, whose list cursors never carry a full id", async () => {
    const ids = await seed("alice", 25);
    const bobs = [await create(at(0), bob)];
    const firstPage = await env.SESSIONS.list({ prefix: await userSessionPrefix("alice"), limit: 1 });
    expect(firstPage.list_complete).toBe(false);
    for (const id of ids) expect(leaks(`"cursor":"${(firstPage as { cursor: string }).cursor}"`, id)).toBe(false);

    const pages = await revokeAll(at(0, {}, { revokePageSize: 10 }), "alice");
    expect(pages.map((p) => p.revoked)).toEqual([10, 10, 5]);
    const { keys } = await env.SESSIONS.list({ prefix: KEY_PREFIX.session });
    expect(keys.map((k) => k.name)).toEqual(await Promise.all(bobs.map(sessionKey)));
    expect((await env.SESSIONS.list({ prefix: await userSessionPrefix("alice") })).keys).toEqual([]);
    for (const id of ids) expect((await at(0)(`/sessions/${id}`)).status).toBe(404);
  });

  it("leaves no session that validates and is not listed when sessions are created during the revocation", async () => {
    await seed("alice", 40);
    const request = at(0, {}, { revokePageSize: 5 });
    const created: string[] = [];
    const creating = (async () => {
      for (let i = 0; i < 20; i++) created.push(await create(request, alice));
    })();
    await Promise.all([revokeAll(request, "alice"), creating]);

    const listed = new Set((await listAll(request, "alice")).sessions.map((s) => s.sessionIdPrefix));
    for (const id of created) {
      if ((await request(`/sessions/${id}`)).status === 200) expect(listed.has(id.slice(0, 8))).toBe(true);
    }
  }, 20_000);

  it("leaves a session created across a revocation listed (the revocation runs between its two writes)", async () => {
    let puts = 0;
    let revoked: Promise<unknown> | undefined;
    const sessions = withFaults(env.SESSIONS, {
      put: async (...args: unknown[]) => {
        if (++puts === 2) await (revoked = revokeAll(at(0), "alice"));
        return env.SESSIONS.put(...(args as Parameters<KVNamespace["put"]>));
      },
    });
    const id = await create(at(0, { SESSIONS: sessions }), alice);
    expect(revoked).toBeDefined();
    expect((await at(0)(`/sessions/${id}`)).status).toBe(200);
    expect((await listAll(at(0), "alice")).sessions.map((s) => s.sessionIdPrefix)).toEqual([id.slice(0, 8)]);
  });

  it("does not let a refresh that read the session before a revocation bring it back", async () => {
    const id = await create(at(0), alice);
    const key = await sessionKey(id);
    let revoked = false;
    const sessions = withFaults(env.SESSIONS, {
      put: async (...args: unknown[]) => {
        const [written] = args as Parameters<KVNamespace["put"]>;
        // The refresh has read the session; the whole revocation happens before its write.
        if (written === key && !revoked) {
          revoked = true;
          await revokeAll(at(0), "alice");
        }
        return env.SESSIONS.put(...(args as Parameters<KVNamespace["put"]>));
      },
    });
    const res = await refresh(at(2 * 60_000, { SESSIONS: sessions }), id);
    expect(revoked).toBe(true);
    expect(await errorOf(res)).toMatchObject({ status: 404, code: "not_found" });
    expect((await at(0)(`/sessions/${id}`)).status).toBe(404);
    expect((await env.SESSIONS.list()).keys).toEqual([]);
  });

  it("answers 401 without the admin token and writes nothing", async () => {
    const id = await create(at(0), alice);
    const res = await at(0)("/users/alice/sessions", { method: "DELETE", headers: { Authorization: `Bearer ${id}` } });
    expect(await errorOf(res)).toMatchObject({ status: 401, code: "unauthorized" });
    expect((await at(0)(`/sessions/${id}`)).status).toBe(200);
  });
});

describe("POST /sessions/:id/refresh", () => {
  it("slides the expiry by the session's TTL and shows lastSeenAt in the listing", async () => {
    const id = await create(at(0), { ...alice, ttlSeconds: 3600 });
    const expirations = async () => (await env.SESSIONS.list()).keys.map((k) => k.expiration ?? 0);
    const offset = 2 * 60_000;
    const before = Date.now() + offset;
    const res = await refresh(at(offset), id);
    expect(res.status).toBe(200);
    const body = await res.json<{ sessionId: string; expiresAt: string }>();
    expect(body.sessionId).toBe(id);
    expect(Date.parse(body.expiresAt) - before).toBeGreaterThanOrEqual(HOUR - 1000);
    expect(Date.parse(body.expiresAt) - before).toBeLessThanOrEqual(HOUR + 1000);

    // Alive past the original expiry, dead past the new one.
    expect((await at(HOUR + 60_000)(`/sessions/${id}`)).status).toBe(200);
    expect((await at(offset + HOUR + 1000)(`/sessions/${id}`)).status).toBe(404);
    const [listed] = (await listAll(at(0), "alice")).sessions;
    expect(listed).toMatchObject({ expiresAt: body.expiresAt, lastSeenAt: expect.any(String) });
    // Both entries were rewritten with the full TTL again (KV counts it from the real clock, not the moved one).
    const kvExpiryAfter = await expirations();
    expect(kvExpiryAfter).toHaveLength(2);
    for (const expiration of kvExpiryAfter) expect(Math.abs(expiration - (Math.floor(Date.now() / 1000) + 3600))).toBeLessThanOrEqual(2);
  });

  it("never slides past the absolute lifetime, then answers 401 session_lifetime_exceeded", async () => {
    const limit = { SESSION_MAX_LIFETIME_SECONDS: String(2 * 3600) };
    const id = await create(at(0, limit), { ...alice, ttlSeconds: 3600 });
    const created = Date.now();
    const step = async (offset: number) => {
      const res = await refresh(at(offset, limit), id);
      expect(res.status).toBe(200);
      return Date.parse((await res.json<{ expiresAt: string }>()).expiresAt) - created;
    };
    expect(await step(50 * 60_000)).toBeGreaterThanOrEqual(110 * 60_000 - 1000); // 50 min + 1 h
    expect(await step(100 * 60_000)).toBeLessThanOrEqual(2 * HOUR + 1000); // capped at 2 h, not 2 h 40
    expect(await step(119 * 60_000)).toBeLessThanOrEqual(2 * HOUR + 1000);

    const past = await refresh(at(2 * HOUR + 1000, limit), id);
    expect(await errorOf(past)).toMatchObject({ status: 401, code: "session_lifetime_exceeded" });
    expect((await at(2 * HOUR + 1000, limit)(`/sessions/${id}`)).status).toBe(404);
  });

  it("caps a new session's expiry at the absolute lifetime", async () => {
    const res = await at(0, { SESSION_MAX_LIFETIME_SECONDS: "600" })("/sessions", jsonInit("POST", { ...alice, ttlSeconds: 3600 }, admin));
    const { expiresAt } = await res.json<{ expiresAt: string }>();
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(600_000);
  });

  it("answers 404 for an unknown or expired session, and 401 to another session's token", async () => {
    const id = await create(at(0), { ...alice, ttlSeconds: 60 });
    const other = await create(at(0), bob);
    const unknown = "u".repeat(32);
    expect(await errorOf(await refresh(at(0), unknown, admin))).toMatchObject({ status: 404, code: "not_found" });
    expect(await errorOf(await refresh(at(61_000), id))).toMatchObject({ status: 404, code: "not_found" });
    expect(await errorOf(await refresh(at(0), id, { Authorization: `Bearer ${other}` }))).toMatchObject({ status: 401, code: "unauthorized" });
    expect((await refresh(at(0), id, admin)).status).toBe(200);
    expect((await refresh(at(0), id, { Cookie: `session=${id}` })).status).toBe(200);
  });

  it("makes one write for a burst of refreshes, concurrent or one after another", async () => {
    const id = await create(at(0), alice);
    const { kv, calls } = countingKv(env.SESSIONS);
    const request = at(2 * 60_000, { SESSIONS: kv });
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => refresh(request, id)));
    for (let i = 0; i < 10; i++) expect((await refresh(request, id)).status).toBe(200);
    expect(concurrent.map((r) => r.status)).toEqual(Array(10).fill(200));
    const puts = calls.filter((call) => call.startsWith("put "));
    expect(puts).toEqual([`put ${await sessionKey(id)}`, `put ${await userSessionKey(alice.userId, id)}`]);
  });

  it("lists and revokes a session from before the index (and before hashing) once a refresh has touched it", async () => {
    const id = "L".repeat(32);
    const now = Date.now();
    const legacy = { ...alice, roles: [], createdAt: new Date(now).toISOString(), expiresAt: new Date(now + HOUR).toISOString() };
    await env.SESSIONS.put(legacySessionKey(id), JSON.stringify(legacy), { expirationTtl: 3600 });
    expect((await at(0)(`/sessions/${id}`)).status).toBe(200);
    expect((await listAll(at(0), "alice")).sessions).toEqual([]);

    const res = await refresh(at(10 * 60_000), id);
    expect(Date.parse((await res.json<{ expiresAt: string }>()).expiresAt)).toBeGreaterThan(now + HOUR);
    expect((await listAll(at(0), "alice")).sessions.map((s) => s.sessionIdPrefix)).toEqual([id.slice(0, 8)]);
    await revokeAll(at(0), "alice");
    expect((await at(0)(`/sessions/${id}`)).status).toBe(404);
  });
});

describe("logout and validateSession with the index", () => {
  it("removes the session's index entry on logout", async () => {
    const id = await create(at(0), alice);
    expect((await at(0)(`/sessions/${id}`, { method: "DELETE", headers: { Authorization: `Bearer ${id}` } })).status).toBe(204);
    expect((await env.SESSIONS.list()).keys).toEqual([]);
  });

  it("refuses a session past its absolute lifetime even if its expiry is later", async () => {
    const id = await create(at(0), { ...alice, ttlSeconds: 3600 });
    const app = new Hono<AppEnv>();
    app.get("/me", validateSession(), (c) => c.json(c.var.session));
    const me = (maxLifetime: string) =>
      app.fetch(new Request("http://worker.test/me", { headers: { Authorization: `Bearer ${id}` } }), { ...env, SESSION_MAX_LIFETIME_SECONDS: maxLifetime });
    expect((await me("7200")).status).toBe(200);
    // Lowered to 60 s: a session created just now is still inside it...
    expect((await me("60")).status).toBe(200);
    const old = validateSession({ now: () => Date.now() + 61_000 });
    const late = new Hono<AppEnv>().get("/me", old, (c) => c.json({}));
    late.onError((err) => Response.json({}, { status: "status" in err ? (err.status as number) : 500 }));
    const res = await late.fetch(new Request("http://worker.test/me", { headers: { Authorization: `Bearer ${id}` } }), { ...env, SESSION_MAX_LIFETIME_SECONDS: "60" });
    // ...and refused a minute later, though its TTL runs for an hour.
    expect(res.status).toBe(401);
  });
});

describe("admin token rotation", () => {
  const rotating = { ADMIN_TOKEN: "new-token", ADMIN_TOKEN_PREVIOUS: "old-token" };
  const list = (request: Client, token: string) => request("/users/alice/sessions", { headers: { Authorization: `Bearer ${token}` } });

  it("accepts the current and the previous token, and no third", async () => {
    const request = at(0, rotating);
    expect((await list(request, "new-token")).status).toBe(200);
    expect((await list(request, "old-token")).status).toBe(200);
    expect(await errorOf(await list(request, "third-token"))).toMatchObject({ status: 401, code: "unauthorized" });
    expect(await errorOf(await list(request, "old-token-"))).toMatchObject({ status: 401, code: "unauthorized" });
  });

  it("ignores an empty previous token, and the previous token alone opens nothing", async () => {
    const empty = at(0, { ADMIN_TOKEN: "new-token", ADMIN_TOKEN_PREVIOUS: "" });
    for (const authorization of ["Bearer ", "Bearer", "Bearer \"\""]) {
      expect((await empty("/users/alice/sessions", { headers: { Authorization: authorization } })).status).toBe(401);
    }
    expect((await list(empty, "new-token")).status).toBe(200);
    const onlyPrevious = at(0, { ADMIN_TOKEN: undefined, ADMIN_TOKEN_PREVIOUS: "old-token" });
    expect(await errorOf(await list(onlyPrevious, "old-token"))).toMatchObject({ status: 503, code: "unavailable" });
  });

  it("lets the previous token end a session", async () => {
    const request = at(0, rotating);
    const id = await create(at(0), alice);
    expect((await request(`/sessions/${id}`, { method: "DELETE", headers: { Authorization: "Bearer old-token" } })).status).toBe(204);
  });
});
