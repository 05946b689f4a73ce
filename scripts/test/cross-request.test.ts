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
const FOLLOWERS = 40;
const ROUNDS = 40;
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
   * FOLLOWERS requests at once, to `path(i)`; every fourth gives up after 1
   * to 7 ms, while the work it started or waits for is in flight. The route
   * and status of each request that stayed.
   */
  async function burst(path: (i: number) => string, init: RequestInit): Promise<[string, number][]> {
    const answers = await Promise.all(
      Array.from({ length: FOLLOWERS }, async (_, i): Promise<[string, number] | undefined> => {
        const url = `${stack.url}${path(i)}`;
        if (i % 4 === 3) {
          await fetch(url, { ...init, signal: AbortSignal.timeout(1 + (i % 7)) }).catch(() => undefined);
          return undefined;
        }
        const res = await fetch(url, init);
        await res.arrayBuffer();
        return [`${init.method ?? "GET"} ${route(path(i))}`, res.status];
      }),
    );
    return answers.filter((answer) => answer !== undefined);
  }
  const route = (path: string) =>
    path.replace(/\/api\/features\/[^?]+.*/, "/api/features/:name").replace(/\/api\/products\/.*/, "/api/products/:id").replace(/\/sessions\/[^/]+/, "/sessions/:id");

  it("answers 200 to every product read and flag evaluation of bursts for cold ones in which clients leave", async () => {
    const config = await stack.mf.getKVNamespace("CONFIG");
    const statuses = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const name = `cold-flag-${round}`;
      // Written straight into KV, so no isolate has it cached.
      const { value, metadata } = encodeFlag({ enabled: true, percentage: 50 });
      await config.put(flagKey(name), value, { metadata });
      // Half flag evaluations, half reads of a product no one has fetched; every fourth request leaves early.
      const paths = (i: number) => (i % 2 === 0 ? `/api/features/${name}?userId=u-${i}` : `/api/products/cold-${round}`);
      for (const [path, status] of await burst(paths, {})) statuses.set(`${status} ${path}`, (statuses.get(`${status} ${path}`) ?? 0) + 1);
      // Bounded stampede: the first fetch, at most one more if its claim lapsed.
      expect(originHits.get(`cold-${round}`)).toBeLessThanOrEqual(2);
    }
    expect(Object.fromEntries(statuses)).toEqual({ "200 GET /api/features/:name": ROUNDS * 20, "200 GET /api/products/:id": ROUNDS * 10 });
  }, 60_000);

  it("answers 200 to every refresh in a burst for one session while the client whose refresh writes it leaves", async () => {
    const sessions = await stack.mf.getKVNamespace("SESSIONS");
    for (let round = 0; round < 30; round++) {
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
      expect(await burst(() => `/sessions/${id}/refresh`, { method: "POST", headers: admin })).toEqual(Array(30).fill(["POST /sessions/:id/refresh", 200]));
    }
  }, 30_000);

  it("logs no cancelled continuation and no lost origin connection in workerd meanwhile", () => {
    expect(watch.samples).toEqual([]);
  });
});
