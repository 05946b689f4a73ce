/**
 * The mixed load the load test and `npm run soak` drive at the local stack
 * `npm start` runs, over real HTTP: each connection creates a session, reads
 * it back, evaluates a flag, reads a product (a cache hit or a miss), asks for
 * an OFREP bulk evaluation and reads another product.
 */
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import autocannon, { type Result } from "autocannon";
import { type LocalStack, type RuntimeLogEntry, startLocalStack } from "../start";

/** The rollout flag every load run evaluates; with `distinctIds`, other names are evaluated too (unknown, so cached as missing). */
export const LOAD_FLAG = "load-checkout";

/**
 * The origin the product cache fronts, in a thread of its own: on the load
 * generator's event loop (autocannon drives hundreds of connections) it would
 * answer late under load, and the Worker's origin fetches would time out
 * because of the test, not the Worker. It keeps connections alive longer than
 * any run, as an origin behind a CDN does: a server that closes an idle
 * connection as the client reuses it makes the client see "Network connection
 * lost", and one that closes every connection makes each fetch a new TCP
 * connection.
 */
const ORIGIN_THREAD = `
const { createServer } = require("node:http");
const { parentPort } = require("node:worker_threads");
const server = createServer((request, response) => {
  response.setHeader("content-type", "application/json");
  response.end(JSON.stringify({ id: request.url.split("/").pop(), name: "load product" }));
});
server.keepAliveTimeout = 60 * 60 * 1000;
server.headersTimeout = server.keepAliveTimeout + 1000;
server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
parentPort.on("message", () => { server.closeAllConnections(); server.close(() => process.exit(0)); });
`;

async function startOriginStub(): Promise<{ url: string; stop(): Promise<void> }> {
  const thread = new Worker(ORIGIN_THREAD, { eval: true });
  const [port] = (await once(thread, "message")) as [number];
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      thread.postMessage("stop");
      await once(thread, "exit");
    },
  };
}

export interface LoadTarget {
  stack: LocalStack;
  /** What workerd logged during the run, counted by kind. */
  runtime: RuntimeWatch;
  dispose(): Promise<void>;
}

/**
 * workerd's log, read for what clients do not see in the Worker's own
 * answers: a "different request context" warning means the runtime cancelled
 * a request's continuations (its client got a 500 the app never produced);
 * "Network connection lost" is an origin fetch that failed under the Worker.
 */
export interface RuntimeWatch {
  crossRequest: number;
  connectionLost: number;
  /** The first few such lines, to show in a failure. */
  samples: string[];
  onRuntimeLog(entry: RuntimeLogEntry): void;
}

export const CROSS_REQUEST_WARNING = "different request context";
const CONNECTION_LOST = "Network connection lost";

export function runtimeWatch(print: (entry: RuntimeLogEntry) => void = () => {}): RuntimeWatch {
  const watch: RuntimeWatch = {
    crossRequest: 0,
    connectionLost: 0,
    samples: [],
    onRuntimeLog(entry) {
      const crossRequest = entry.message.includes(CROSS_REQUEST_WARNING);
      const connectionLost = entry.message.includes(CONNECTION_LOST);
      if (crossRequest) watch.crossRequest += 1;
      if (connectionLost) watch.connectionLost += 1;
      if ((crossRequest || connectionLost) && watch.samples.length < 5) watch.samples.push(entry.message.trim());
      print(entry);
    },
  };
  return watch;
}

/**
 * The local stack with an origin stub that answers every product, and the
 * rollout flag. KV is in memory unless `dataDir` is given (a soak persists it
 * to disk, so stored sessions do not count as workerd's memory growth).
 */
export async function startLoadTarget(options: { dataDir?: string } = {}): Promise<LoadTarget> {
  const origin = await startOriginStub();
  const originUrl = origin.url;
  const storage = options.dataDir ? { dataDir: options.dataDir } : { ephemeral: true };
  const runtime = runtimeWatch();
  const stack = await startLocalStack({ port: 0, ...storage, adminToken: "load-admin-token", originUrl, onRuntimeLog: runtime.onRuntimeLog });
  const flag = await fetch(`${stack.url}/api/features/${LOAD_FLAG}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ enabled: true, percentage: 50 }),
  });
  if (flag.status !== 200) throw new Error(`seeding ${LOAD_FLAG}: HTTP ${flag.status}`);
  return {
    stack,
    runtime,
    async dispose() {
      await stack.dispose();
      await origin.stop();
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
        headers: admin,
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
        setupRequest: (request, context) => ({ ...request, method: "GET", path: `/sessions/${String(context.sessionId)}` }),
        onResponse: tally("GET /sessions/:id"),
      },
      {
        setupRequest: (request) => ({ ...request, method: "GET", path: `/api/features/${flagName()}?userId=u-${++n}` }),
        onResponse: tally("GET /api/features/:name"),
      },
      {
        setupRequest: (request) => ({ ...request, method: "GET", path: `/api/products/p-${n % distinct}` }),
        onResponse: tally("GET /api/products/:id"),
      },
      // What OpenFeature's web providers poll, then a second product, so products are a third of the mix.
      {
        setupRequest: (request) => ({
          ...request,
          method: "POST",
          path: "/ofrep/v1/evaluate/flags",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ context: { targetingKey: `u-${n}` } }),
        }),
        onResponse: tally("POST /ofrep/v1/evaluate/flags"),
      },
      {
        setupRequest: (request) => ({ ...request, method: "GET", path: `/api/products/p-${(n * 7 + 3) % distinct}` }),
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
