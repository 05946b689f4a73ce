import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import autocannon, { type Result } from "autocannon";
import { nanoid } from "nanoid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SessionRecord, type UserSessionMetadata, encodeSession, sessionKey, userSessionKey } from "../../worker/src/contract";
import { revoke } from "../revoke";
import { type LocalStack, startLocalStack } from "../start";

const CONNECTIONS = 50;
const SECONDS = 10;
const FLAG = "load-checkout";

// Mixed reads and writes against the local stack `npm start` runs, over real HTTP.
describe("load: 50 connections, mixed reads and writes for 10 s", () => {
  let origin: Server;
  let stack: LocalStack;
  let result: Result;
  /** Every session the server confirmed creating (201 with an id). */
  const created: string[] = [];

  beforeAll(async () => {
    origin = createServer((request, response) => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ id: request.url?.split("/").pop(), name: "load product" }));
    });
    origin.listen(0, "127.0.0.1");
    await once(origin, "listening");
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "load-admin-token", originUrl: `http://127.0.0.1:${(origin.address() as AddressInfo).port}` });
    const admin = { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" };
    const flag = await fetch(`${stack.url}/api/features/${FLAG}`, { method: "PUT", headers: admin, body: JSON.stringify({ enabled: true, percentage: 50 }) });
    expect(flag.status).toBe(200);

    let n = 0;
    result = await autocannon({
      url: stack.url,
      connections: CONNECTIONS,
      duration: SECONDS,
      timeout: 10,
      requests: [
        {
          method: "POST",
          path: "/sessions",
          headers: admin,
          body: JSON.stringify({ userId: "u-load", email: "load@example.com", roles: ["reader"] }),
          onResponse: (status, body, context) => {
            if (status !== 201) return;
            const { sessionId } = JSON.parse(body) as { sessionId: string };
            created.push(sessionId);
            context.sessionId = sessionId;
          },
        },
        // Reads what this connection just wrote, then the hot flag and a product (cache hit or miss).
        { setupRequest: (request, context) => ({ ...request, method: "GET", path: `/sessions/${String(context.sessionId)}` }) },
        { setupRequest: (request) => ({ ...request, method: "GET", path: `/api/features/${FLAG}?userId=u-${++n}` }) },
        { setupRequest: (request) => ({ ...request, method: "GET", path: `/api/products/p-${n % 50}` }) },
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.dispose();
    origin?.closeAllConnections();
    origin?.close();
  });

  it("answers every request without an error", () => {
    expect(result.requests.total).toBeGreaterThan(CONNECTIONS * 4);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
  });

  it("loses no session: every one created during the run is readable afterwards", async () => {
    expect(created.length).toBeGreaterThan(CONNECTIONS);
    const missing: string[] = [];
    let next = 0;
    const reader = async () => {
      while (next < created.length) {
        const id = created[next++]!;
        const res = await fetch(`${stack.url}/sessions/${id}`);
        const body = (await res.json()) as { userId?: string };
        if (res.status !== 200 || body.userId !== "u-load") missing.push(`${id}: ${res.status}`);
      }
    };
    await Promise.all(Array.from({ length: 20 }, reader));
    expect(missing).toEqual([]);
  }, 60_000);
});

// Sign-out-everywhere while 50 connections read and refresh that user's sessions.
describe("load: sign out everywhere during 50 connections of session reads and refreshes", () => {
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
