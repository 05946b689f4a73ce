/**
 * The mixed load the load test and `npm run soak` drive at the local stack
 * `npm start` runs, over real HTTP: each connection creates a session, reads
 * it back, evaluates a flag and reads a product (a cache hit or a miss).
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import autocannon, { type Result } from "autocannon";
import { RATE_LIMIT_NAMES, type RateLimitsSettings } from "../../worker/src/contract";
import { type LocalStack, startLocalStack } from "../start";

/** The rollout flag every load run evaluates; with `distinctIds`, other names are evaluated too (unknown, so cached as missing). */
export const LOAD_FLAG = "load-checkout";

/**
 * The limits the load runs with: the limiter bindings are there (their cost is
 * part of what is measured) but set far above what the synthetic clients
 * send. Each connection is a client of its own (clientAddress), yet one
 * connection sends as fast as the server answers, hundreds of requests a
 * minute, far more than a person: under the dev stack's limits (600 product
 * misses a minute per client) a soak over 20,000 ids would measure 429s.
 * scripts/test/rate-limit.test.ts checks the dev stack's limits themselves.
 */
export const LOAD_RATE_LIMITS: RateLimitsSettings = {
  namespaceBase: 1000,
  limits: Object.fromEntries(RATE_LIMIT_NAMES.map((name) => [name, { limit: 1_000_000, period: 60 }])) as RateLimitsSettings["limits"],
};

/**
 * Each autocannon connection as a client of its own: CF-Connecting-IP (which
 * Cloudflare sets from the connection, and Miniflare keeps when a client
 * sends it) from the connection's context, so limiter keys spread as they do
 * in production.
 */
let connectionsSeen = 0;
export function clientAddress(context: Record<string, unknown>): Record<string, string> {
  context.clientIp ??= `10.${(connectionsSeen >> 16) & 255}.${(connectionsSeen >> 8) & 255}.${connectionsSeen++ & 255}`;
  return { "cf-connecting-ip": String(context.clientIp) };
}

export interface LoadTarget {
  stack: LocalStack;
  dispose(): Promise<void>;
}

/**
 * The local stack with an origin stub that answers every product, and the
 * rollout flag. KV is in memory unless `dataDir` is given (a soak persists it
 * to disk, so stored sessions do not count as workerd's memory growth).
 */
export async function startLoadTarget(options: { dataDir?: string } = {}): Promise<LoadTarget> {
  const origin: Server = createServer((request, response) => {
    response.setHeader("content-type", "application/json");
    // Node closes an idle keep-alive socket after 5 s; workerd may reuse it at that moment and see
    // "Network connection lost", a 502 that is the stub's, not the Worker's. One connection per fetch.
    response.setHeader("connection", "close");
    response.end(JSON.stringify({ id: request.url?.split("/").pop(), name: "load product" }));
  });
  origin.listen(0, "127.0.0.1");
  await once(origin, "listening");
  const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  const storage = options.dataDir ? { dataDir: options.dataDir } : { ephemeral: true };
  const stack = await startLocalStack({ port: 0, ...storage, adminToken: "load-admin-token", originUrl, rateLimits: LOAD_RATE_LIMITS });
  const flag = await fetch(`${stack.url}/api/features/${LOAD_FLAG}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ enabled: true, percentage: 50 }),
  });
  if (flag.status !== 200) throw new Error(`seeding ${LOAD_FLAG}: HTTP ${flag.status}`);
  return {
    stack,
    async dispose() {
      await stack.dispose();
      origin.closeAllConnections();
      origin.close();
    },
  };
}

export interface LoadOptions {
  connections: number;
  seconds: number;
  /**
   * Distinct flag names and product ids the run cycles through. 50 (the load
   * test) keeps products mostly cache hits; a soak uses many more, so the
   * isolate's bounded maps (flag cache, in-flight fetches) see many keys.
   */
  distinctIds?: number;
  /** Ids already used by earlier runs, so a soak keeps finding new ones. */
  offset?: number;
}

/**
 * One run of the mix; `created` holds every session the server confirmed (201 with an id), `failed` counts the
 * non-2xx answers by `<status> <route>`, so a failure says where it happened.
 */
export async function mixedLoad(
  target: LoadTarget,
  options: LoadOptions,
): Promise<{ result: Result; created: string[]; failed: Record<string, number> }> {
  const { stack } = target;
  const admin = { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" };
  const distinct = options.distinctIds ?? 50;
  const created: string[] = [];
  const failed: Record<string, number> = {};
  const tally = (route: string) => (status: number) => {
    if (status < 200 || status > 299) failed[`${status} ${route}`] = (failed[`${status} ${route}`] ?? 0) + 1;
  };
  let n = options.offset ?? 0;
  const flagName = () => (distinct <= 50 ? LOAD_FLAG : `${LOAD_FLAG}-${n % distinct}`);
  const result = await autocannon({
    url: stack.url,
    connections: options.connections,
    duration: options.seconds,
    timeout: 10,
    requests: [
      {
        method: "POST",
        path: "/sessions",
        setupRequest: (request, context) => ({ ...request, headers: { ...admin, ...clientAddress(context) } }),
        body: JSON.stringify({ userId: "u-load", email: "load@example.com", roles: ["reader"] }),
        onResponse: (status, body, context) => {
          tally("POST /sessions")(status);
          if (status !== 201) return;
          const { sessionId } = JSON.parse(body) as { sessionId: string };
          created.push(sessionId);
          context.sessionId = sessionId;
        },
      },
      // Reads what this connection just wrote, then a flag and a product (cache hit or miss).
      {
        setupRequest: (request, context) => ({ ...request, method: "GET", path: `/sessions/${String(context.sessionId)}`, headers: clientAddress(context) }),
        onResponse: tally("GET /sessions/:id"),
      },
      {
        setupRequest: (request, context) => ({ ...request, method: "GET", path: `/api/features/${flagName()}?userId=u-${++n}`, headers: clientAddress(context) }),
        onResponse: tally("GET /api/features/:name"),
      },
      {
        setupRequest: (request, context) => ({ ...request, method: "GET", path: `/api/products/p-${n % distinct}`, headers: clientAddress(context) }),
        onResponse: tally("GET /api/products/:id"),
      },
    ],
  });
  return { result, created, failed };
}

/** Errors of any kind autocannon saw: connection errors, timeouts (autocannon counts them in `errors` too), non-2xx answers. */
export const loadErrors = (result: Result) => result.errors + result.non2xx;

/** The errors by kind: `connection`, `timeout`, or a non-2xx answer as `<status> <route>`; kinds that did not occur are left out. */
export function errorKinds(result: Result, failed: Record<string, number>): Record<string, number> {
  const kinds: [string, number][] = [["connection", result.errors - result.timeouts], ["timeout", result.timeouts], ...Object.entries(failed)];
  return Object.fromEntries(kinds.filter(([, count]) => count > 0));
}

/** Sessions among `ids` that do not read back as the load's user (with their status), read 20 at a time. */
export async function unreadableSessions(target: LoadTarget, ids: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  let next = 0;
  const reader = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      const res = await fetch(`${target.stack.url}/sessions/${id}`);
      const body = (await res.json()) as { userId?: string };
      if (res.status !== 200 || body.userId !== "u-load") missing.push(`${id}: ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 20 }, reader));
  return missing;
}
