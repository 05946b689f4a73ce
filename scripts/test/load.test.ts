import autocannon, { type Result } from "autocannon";
import { nanoid } from "nanoid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SessionRecord, type UserSessionMetadata, encodeSession, sessionKey, userSessionKey } from "../../worker/src/contract";
import { type LoadTarget, loadErrors, mixedLoad, startLoadTarget, unreadableSessions } from "../lib/mixed-load";
import { revoke } from "../revoke";
import { LOAD_TEST_CONNECTIONS } from "../soak";
import { type LocalStack, startLocalStack } from "../start";

const SECONDS = 10;

// Mixed reads and writes against the local stack `npm start` runs, over real HTTP.
describe(`load: ${LOAD_TEST_CONNECTIONS} connections, mixed reads and writes for ${SECONDS} s`, () => {
  let target: LoadTarget;
  let result: Result;
  /** Every session the server confirmed creating (201 with an id). */
  let created: string[] = [];

  beforeAll(async () => {
    target = await startLoadTarget();
    ({ result, created } = await mixedLoad(target, { connections: LOAD_TEST_CONNECTIONS, seconds: SECONDS }));
  }, 60_000);

  afterAll(() => target?.dispose());

  it("answers every request without an error", () => {
    expect(result.requests.total).toBeGreaterThan(LOAD_TEST_CONNECTIONS * 4);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
    expect(loadErrors(result)).toBe(0);
  });

  it("makes workerd warn of no request whose continuations it cancelled, and loses no origin connection", () => {
    expect(target.runtime.samples).toEqual([]);
    expect({ crossRequest: target.runtime.crossRequest, connectionLost: target.runtime.connectionLost }).toEqual({ crossRequest: 0, connectionLost: 0 });
  });

  it("loses no session: every one created during the run is readable afterwards", async () => {
    expect(created.length).toBeGreaterThan(LOAD_TEST_CONNECTIONS);
    expect(await unreadableSessions(target, created)).toEqual([]);
  }, 60_000);
});

// Sign-out-everywhere while 50 connections read and refresh that user's sessions.
describe("load: sign out everywhere during 50 connections of session reads and refreshes", () => {
  const CONNECTIONS = 50;
  const REVOKED_USER = "u-revoked";
  const KEPT_USER = "u-kept";
  let stack: LocalStack;
  let result: Result;
  const revoked: string[] = [];
  const kept: string[] = [];
  /** Requests sent after the revocation completed that a revoked session still passed. */
  const answeredAfterRevocation: string[] = [];
  let revokedAt = Infinity;

  beforeAll(async () => {
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "load-admin-token" });
    // Written straight into local KV as POST /sessions writes them (session, then index entry), but created
    // ten minutes ago, so each session's first refresh really writes: the race with the revocation is live.
    const kv = await stack.mf.getKVNamespace("SESSIONS");
    const now = Date.now();
    const create = async (id: string, session: SessionRecord) => {
      const metadata: UserSessionMetadata = { sessionId: id, createdAt: session.createdAt, expiresAt: session.expiresAt };
      await kv.put(sessionKey(id), encodeSession(session), { expirationTtl: 3000 });
      await kv.put(await userSessionKey(session.userId, id), "", { expirationTtl: 3000, metadata });
    };
    const record = (userId: string): SessionRecord => ({
      userId,
      email: "load@example.com",
      roles: [],
      createdAt: new Date(now - 600_000).toISOString(),
      expiresAt: new Date(now + 3_000_000).toISOString(),
      ttlSeconds: 3600,
    });
    for (const [list, user, count] of [[revoked, REVOKED_USER, 200], [kept, KEPT_USER, 20]] as const) {
      for (let i = 0; i < count; i++) list.push(nanoid(32));
      await Promise.all(list.map((id) => create(id, record(user))));
    }
    const ids = [...revoked, ...kept];
    const revokedSet = new Set(revoked);

    let k = 0;
    const running = autocannon({
      url: stack.url,
      connections: CONNECTIONS,
      duration: 4,
      timeout: 10,
      requests: [
        {
          setupRequest: (request, context) => {
            context.id = ids[k++ % ids.length];
            return { ...request, method: "GET", path: `/sessions/${String(context.id)}` };
          },
        },
        {
          setupRequest: (request, context) => {
            context.sentAt = Date.now();
            return { ...request, method: "POST", path: `/sessions/${String(context.id)}/refresh`, headers: { authorization: `Bearer ${String(context.id)}` } };
          },
          onResponse: (status, _body, context) => {
            if (status === 200 && revokedSet.has(String(context.id)) && Number(context.sentAt) > revokedAt) {
              answeredAfterRevocation.push(String(context.id));
            }
          },
        },
      ],
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const summary = await revoke({ url: stack.url, userId: REVOKED_USER, adminToken: stack.adminToken });
    revokedAt = Date.now();
    expect(summary.revoked).toBe(revoked.length);
    result = await running;
  }, 60_000);

  afterAll(() => stack?.dispose());

  it("answers no request with a 5xx or an error", () => {
    expect(result.requests.total).toBeGreaterThan(CONNECTIONS * 2);
    const serverErrors = Object.entries(result.statusCodeStats).filter(([status]) => Number(status) >= 500);
    expect({ errors: result.errors, timeouts: result.timeouts, serverErrors }).toEqual({ errors: 0, timeouts: 0, serverErrors: [] });
    // Both sides of the revocation were seen: sessions answered before it, and 404s after.
    expect(Object.keys(result.statusCodeStats).sort()).toEqual(["200", "404"]);
  });

  it("answers 200 to no revoked session afterwards, and keeps the other user's sessions", async () => {
    expect(answeredAfterRevocation).toEqual([]);
    const statuses = async (ids: string[], path: (id: string) => string, init: (id: string) => RequestInit) =>
      Promise.all(ids.map(async (id) => (await fetch(`${stack.url}${path(id)}`, init(id))).status));
    const bearer = (id: string) => ({ method: "POST", headers: { authorization: `Bearer ${id}` } });
    expect(new Set(await statuses(revoked, (id) => `/sessions/${id}`, () => ({})))).toEqual(new Set([404]));
    expect(new Set(await statuses(revoked, (id) => `/sessions/${id}/refresh`, bearer))).toEqual(new Set([404]));
    expect(new Set(await statuses(kept, (id) => `/sessions/${id}`, () => ({})))).toEqual(new Set([200]));
  }, 30_000);
});
