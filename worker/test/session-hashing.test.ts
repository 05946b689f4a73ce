import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import {
  KV_BINDINGS,
  type LegacyUserSessionMetadata,
  type SessionRecord,
  legacySessionKey,
  sessionHash,
  sessionKey,
  userSessionKey,
} from "../src/contract";
import { loggablePath } from "../src/errors";
import { admin, appClient, countingKv, jsonInit } from "./helpers";

beforeEach(() => reset());

const HOUR = 3_600_000;
const alice = { userId: "alice", email: "alice@example.com" };
type Client = ReturnType<typeof appClient>;
const at = (offsetMs: number) => appClient({ now: () => Date.now() + offsetMs });
const bearer = (id: string) => ({ Authorization: `Bearer ${id}` });

async function create(request: Client): Promise<string> {
  const res = await request("/sessions", jsonInit("POST", { ...alice, ttlSeconds: 3600 }, admin));
  expect(res.status).toBe(201);
  return (await res.json<{ sessionId: string }>()).sessionId;
}

/** Every key of every namespace with its value, metadata and a listing cursor, as one text a dump would show. */
async function kvDump(): Promise<string> {
  const parts: string[] = [];
  for (const binding of KV_BINDINGS) {
    const first = await env[binding].list({ limit: 1 });
    if (!first.list_complete) parts.push(first.cursor);
    for (const key of (await env[binding].list()).keys) {
      const { value, metadata } = await env[binding].getWithMetadata(key.name);
      parts.push(key.name, value ?? "", JSON.stringify(metadata ?? null));
    }
  }
  return parts.join("\n");
}

/** A session as the Worker stored it before ids were hashed: `session:<id>`, and an index entry carrying the id. */
async function storeLegacy(id: string, now: number): Promise<SessionRecord> {
  const session: SessionRecord = {
    ...alice,
    roles: [],
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + HOUR).toISOString(),
    ttlSeconds: 3600,
  };
  const metadata: LegacyUserSessionMetadata = { sessionId: id, createdAt: session.createdAt, expiresAt: session.expiresAt };
  await env.SESSIONS.put(legacySessionKey(id), JSON.stringify(session), { expirationTtl: 3600 });
  await env.SESSIONS.put(await userSessionKey(alice.userId, id), "", { expirationTtl: 3600, metadata });
  return session;
}

describe("sessions hashed at rest", () => {
  it("stores a session under session:<sha256(id)>, and no key, value, metadata or cursor holds the id", async () => {
    const ids = [await create(at(0)), await create(at(0))];
    expect((await at(10 * 60_000)(`/sessions/${ids[0]}/refresh`, { method: "POST", headers: bearer(ids[0]!) })).status).toBe(200);
    const listed = await at(0)("/users/alice/sessions", { headers: admin });
    expect(listed.status).toBe(200);

    const keys = (await env.SESSIONS.list()).keys.map((k) => k.name);
    for (const id of ids) {
      expect(keys).toContain(`session:${await sessionHash(id)}`);
      expect(await sessionKey(id)).toMatch(/^session:[A-Za-z0-9_-]{43}$/);
    }
    const dump = await kvDump();
    for (const id of ids) expect(dump).not.toContain(id);
  });

  it("keeps a session stored under its pre-hash key working, and a refresh moves it", async () => {
    const id = "L".repeat(32);
    await storeLegacy(id, Date.now());

    expect((await at(0)(`/sessions/${id}`)).status).toBe(200);
    const listing = await (await at(0)("/users/alice/sessions", { headers: admin })).json<{ sessions: { sessionIdPrefix: string }[] }>();
    expect(listing.sessions.map((s) => s.sessionIdPrefix)).toEqual([id.slice(0, 8)]);
    expect(await kvDump()).toContain(id);

    // Within the refresh interval: nothing slides, but the session still moves.
    const res = await at(1000)(`/sessions/${id}/refresh`, { method: "POST", headers: bearer(id) });
    expect(res.status).toBe(200);
    expect(await env.SESSIONS.get(legacySessionKey(id))).toBeNull();
    expect(await env.SESSIONS.get(await sessionKey(id))).not.toBeNull();
    expect(await kvDump()).not.toContain(id);

    expect((await at(0)(`/sessions/${id}`)).status).toBe(200);
    const after = await (await at(0)("/users/alice/sessions", { headers: admin })).json<{ sessions: { sessionIdPrefix: string }[] }>();
    expect(after.sessions.map((s) => s.sessionIdPrefix)).toEqual([id.slice(0, 8)]);
  });

  it("logs out a session stored under its pre-hash key", async () => {
    const id = "M".repeat(32);
    await storeLegacy(id, Date.now());
    expect((await at(0)(`/sessions/${id}`, { method: "DELETE", headers: bearer(id) })).status).toBe(204);
    expect((await env.SESSIONS.list()).keys).toEqual([]);
    expect((await at(0)(`/sessions/${id}`)).status).toBe(404);
  });

  it("revokes sessions listed by pre-hash index entries, whichever key the session sits under", async () => {
    const unmoved = "N".repeat(32);
    await storeLegacy(unmoved, Date.now());
    const fresh = await create(at(0));
    const res = await at(0)("/users/alice/sessions", { method: "DELETE", headers: admin });
    expect(await res.json()).toEqual({ revoked: 2, complete: true });
    expect((await env.SESSIONS.list()).keys).toEqual([]);
    for (const id of [unmoved, fresh]) expect((await at(0)(`/sessions/${id}`)).status).toBe(404);
  });

  it("reads a hashed session with one KV read, and only an unknown id falls back to the pre-hash key", async () => {
    const id = await create(at(0));
    const { kv, calls } = countingKv(env.SESSIONS);
    const request = appClient({}, { SESSIONS: kv });
    expect((await request(`/sessions/${id}`)).status).toBe(200);
    expect(calls).toEqual([`get ${await sessionKey(id)}`]);
    calls.length = 0;
    const unknown = "u".repeat(32);
    expect((await request(`/sessions/${unknown}`)).status).toBe(404);
    expect(calls).toEqual([`get ${await sessionKey(unknown)}`, `get ${legacySessionKey(unknown)}`]);
  });

  it("logs a session route's path with the id replaced", () => {
    expect(loggablePath(`/sessions/${"a".repeat(32)}/refresh`)).toBe("/sessions/:id/refresh");
    expect(loggablePath(`/sessions/${"a".repeat(32)}`)).toBe("/sessions/:id");
    expect(loggablePath("/api/products/p-1")).toBe("/api/products/p-1");
  });
});
