import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SessionRecord, type UserSessionMetadata, encodeFlag, encodeSession, flagKey, sessionKey, userSessionKey } from "../../worker/src/contract";
import { type RuntimeWatch, runtimeWatch } from "../lib/mixed-load";
import { type LocalStack, startLocalStack } from "../start";

// Concurrent requests for the same cold thing, over real HTTP to workerd,
// while the client whose request started the work disconnects. If one request
// awaited a promise another created, workerd would cancel it and answer 500
// with a "different request context" warning.
const ORIGIN_DELAY_MS = 200;
const FOLLOWERS = 30;
const ADMIN_TOKEN = "cross-request-admin-token";
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

describe("no promise crosses a request", () => {
  let stack: LocalStack;
  let origin: Server;
  let watch: RuntimeWatch;
  const originHits = new Map<string, number>();

  beforeAll(async () => {
    origin = createServer((request, response) => {
      const id = decodeURIComponent(request.url?.split("/").pop() ?? "");
      originHits.set(id, (originHits.get(id) ?? 0) + 1);
      setTimeout(() => {
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ id, name: "slow product" }));
      }, ORIGIN_DELAY_MS);
    });
    origin.listen(0, "127.0.0.1");
    await once(origin, "listening");
    watch = runtimeWatch();
    const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: ADMIN_TOKEN, originUrl, onRuntimeLog: watch.onRuntimeLog });
  }, 60_000);

  afterAll(async () => {
    await stack?.dispose();
    origin?.closeAllConnections();
    origin?.close();
  });

  /**
   * One client that gives up after `leaveAfterMs`, then FOLLOWERS more for the
   * same thing, every fifth of which gives up too; the statuses of those that
   * stayed.
   */
  async function burst(path: string, init: RequestInit, leaveAfterMs: number): Promise<number[]> {
    const leave = () => fetch(`${stack.url}${path}`, { ...init, signal: AbortSignal.timeout(leaveAfterMs) }).catch(() => undefined);
    const leaver = leave();
    await new Promise((resolve) => setTimeout(resolve, Math.min(5, leaveAfterMs / 2)));
    const stay = async () => {
      const res = await fetch(`${stack.url}${path}`, init);
      await res.arrayBuffer();
      return res.status;
    };
    const followers = await Promise.all(Array.from({ length: FOLLOWERS }, (_, i) => (i % 5 === 4 ? leave().then(() => undefined) : stay())));
    await leaver;
    return followers.filter((status) => status !== undefined);
  }
  const STAYING = FOLLOWERS - FOLLOWERS / 5;

  it("answers 200 to every reader of an uncached product while the client whose request fetches it leaves", async () => {
    for (let round = 0; round < 5; round++) {
      const id = `cold-${round}`;
      expect(await burst(`/api/products/${id}`, {}, 50)).toEqual(Array(STAYING).fill(200));
      // Bounded stampede: the leaving client's fetch, at most one more if its claim lapsed.
      expect(originHits.get(id)).toBeLessThanOrEqual(2);
    }
    expect(watch.samples).toEqual([]);
  }, 30_000);

  it("answers 200 to every first evaluation of a flag while the client whose request read it first leaves", async () => {
    const config = await stack.mf.getKVNamespace("CONFIG");
    for (let round = 0; round < 20; round++) {
      const name = `cold-flag-${round}`;
      // Written straight into KV, so no isolate has it cached.
      const { value, metadata } = encodeFlag({ enabled: true, percentage: 50 });
      await config.put(flagKey(name), value, { metadata });
      expect(await burst(`/api/features/${name}?userId=u-${round}`, {}, 2)).toEqual(Array(STAYING).fill(200));
    }
    expect(watch.samples).toEqual([]);
  }, 30_000);

  it("answers 200 to every refresh in a burst for one session while the client whose refresh writes it leaves", async () => {
    const sessions = await stack.mf.getKVNamespace("SESSIONS");
    for (let round = 0; round < 10; round++) {
      const id = `cross${String(round).padStart(2, "0")}`.padEnd(32, "x");
      // Created ten minutes ago, so the burst's first refresh really writes.
      const createdAt = Date.now() - 10 * 60_000;
      const session: SessionRecord = {
        userId: "u-burst",
        email: "burst@example.com",
        roles: [],
        createdAt: new Date(createdAt).toISOString(),
        expiresAt: new Date(createdAt + 3_600_000).toISOString(),
        ttlSeconds: 3600,
      };
      const metadata: UserSessionMetadata = { sessionId: id, createdAt: session.createdAt, expiresAt: session.expiresAt };
      await sessions.put(sessionKey(id), encodeSession(session), { expirationTtl: 3000 });
      await sessions.put(await userSessionKey(session.userId, id), "", { expirationTtl: 3000, metadata });
      expect(await burst(`/sessions/${id}/refresh`, { method: "POST", headers: admin }, 3)).toEqual(Array(STAYING).fill(200));
    }
    expect(watch.samples).toEqual([]);
  }, 30_000);
});
