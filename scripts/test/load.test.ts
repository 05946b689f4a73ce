import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import autocannon, { type Result } from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
