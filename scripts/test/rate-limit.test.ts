/**
 * Rate limits as `npm start` runs them (the dev stack's limits, Miniflare's
 * ratelimit bindings), over real HTTP: a burst of distinct product misses
 * from one client is cut off with 429s, never a 5xx, while another client's
 * ordinary traffic sees none.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStackConfig } from "../../infra/stack-file";
import { type LocalStack, startLocalStack } from "../start";

const ADMIN_TOKEN = "rate-limit-test-admin-token";
const BURST = 1000;
const CONCURRENCY = 25;
/** Another client (Cloudflare sets CF-Connecting-IP; locally Miniflare keeps one the client sends). */
const ORDINARY_CLIENT = { "CF-Connecting-IP": "203.0.113.7" };

describe("rate limits on the local stack (npm start, dev stack)", () => {
  let stack: LocalStack;
  let origin: Server;
  let originCalls = 0;
  const dev = loadStackConfig("dev").rateLimits.limits;

  beforeAll(async () => {
    origin = createServer((request, response) => {
      originCalls++;
      response.setHeader("content-type", "application/json");
      response.setHeader("connection", "close");
      response.end(JSON.stringify({ id: request.url?.split("/").pop() }));
    });
    origin.listen(0, "127.0.0.1");
    await once(origin, "listening");
    const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: ADMIN_TOKEN, originUrl });
  });
  afterAll(async () => {
    await stack?.dispose();
    origin?.closeAllConnections();
    origin?.close();
  });

  it("ships a dev stack that limits product misses to at most 600 a minute per client", () => {
    expect(dev.productMisses.limit).toBeLessThanOrEqual(600);
    expect(dev.productMisses.period).toBe(60);
  });

  it(`answers a burst of ${BURST} distinct product misses from one client with 429s and Retry-After past the limit, no 5xx, while ordinary traffic gets none`, async () => {
    // The limiter counts in fixed windows of the period: start the burst well inside one.
    const intoWindow = Date.now() % (dev.productMisses.period * 1000);
    if (intoWindow > (dev.productMisses.period - 15) * 1000) await new Promise((r) => setTimeout(r, dev.productMisses.period * 1000 - intoWindow + 50));

    const burst: { status: number; retryAfter: string | null; body: string }[] = [];
    let next = 0;
    const burstWorker = async () => {
      while (next < BURST) {
        const res = await fetch(`${stack.url}/api/products/burst-${next++}`);
        burst.push({ status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.text() });
      }
    };

    // Ordinary traffic at the same time: a few products read again and again, flag evaluations, a session and its refresh.
    const ordinary: { what: string; status: number }[] = [];
    const record = async (what: string, res: Promise<Response>) => {
      const answer = await res;
      await answer.arrayBuffer();
      ordinary.push({ what, status: answer.status });
    };
    const ordinaryClient = async () => {
      const created = await fetch(`${stack.url}/sessions`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ userId: "ordinary", email: "ordinary@example.com" }),
      });
      const { sessionId } = (await created.json()) as { sessionId: string };
      for (let round = 0; round < 20; round++) {
        await record("product", fetch(`${stack.url}/api/products/ordinary-${round % 5}`, { headers: ORDINARY_CLIENT }));
        await record("flag", fetch(`${stack.url}/api/features/new-checkout?userId=u-${round}`, { headers: ORDINARY_CLIENT }));
        await record("session", fetch(`${stack.url}/sessions/${sessionId}`, { headers: ORDINARY_CLIENT }));
        if (round % 5 === 0) {
          await record("refresh", fetch(`${stack.url}/sessions/${sessionId}/refresh`, { method: "POST", headers: { ...ORDINARY_CLIENT, authorization: `Bearer ${sessionId}` } }));
        }
      }
    };
    await Promise.all([...Array.from({ length: CONCURRENCY }, burstWorker), ordinaryClient()]);

    const count = (status: number) => burst.filter((r) => r.status === status).length;
    expect(burst).toHaveLength(BURST);
    expect(burst.filter((r) => r.status !== 200 && r.status !== 429)).toEqual([]);
    expect(count(200)).toBe(dev.productMisses.limit);
    expect(count(429)).toBe(BURST - dev.productMisses.limit);
    for (const limited of burst.filter((r) => r.status === 429)) {
      expect(limited.retryAfter).toBe(String(dev.productMisses.period));
      expect(JSON.parse(limited.body)).toEqual({ error: expect.stringContaining("retry after"), code: "rate_limited" });
    }
    // Each refused miss stopped before the origin: 600 burst misses plus the ordinary client's 5 products.
    expect(originCalls).toBe(dev.productMisses.limit + 5);

    expect(ordinary.filter((r) => r.status !== 200)).toEqual([]);
    expect(ordinary).toHaveLength(64);

    // Hits are not limited: the bursting client still reads what is cached.
    const hit = await fetch(`${stack.url}/api/products/burst-0`);
    expect(hit.status).toBe(200);
    expect(hit.headers.get("x-cache")).toBe("HIT");
  }, 60_000);
});
