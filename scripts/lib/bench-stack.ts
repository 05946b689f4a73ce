/**
 * The workers the benchmark drives, all in ONE Miniflare/workerd instance so
 * they share the runtime, the machine's noise and the same local KV data:
 *
 * - `production`: dist's bundle, unwrapped — throughput figures come from it;
 * - `counting`:   the same app behind bench/entry.ts, which counts KV operations;
 * - `fixed-200`:  the runtime's ceiling;
 * - `one-get`:    the ceiling for a KV-bound endpoint (exactly one KV get);
 * - `plain`:      the read routes as a plain fetch handler on the app's own
 *                 stores (bench/plain.ts): what the framework costs.
 *
 * Each worker listens on its own loopback port (a direct socket, bypassing
 * Miniflare's routing worker), and a node:http origin stub answers cache misses.
 */
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { KV_BINDINGS, type KvBinding } from "../../worker/src/contract";
import { build, ROOT, type Manifest } from "../build";
import { localWorker } from "./local-worker";

export const BENCH_OUT = join(ROOT, "bench/.out");
export const WORKER_NAMES = ["production", "counting", "fixed-200", "one-get", "plain"] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];
export type OpKind = "read" | "write" | "delete" | "list";
export type KvOps = Record<OpKind, number>;

/** The runtime's ceiling: a fixed 200 (also the startup profile's reference and bench/compare.ts's). */
export const FIXED_200 = `export default {
  fetch: () => new Response('{"ok":true}', { headers: { "content-type": "application/json" } }),
};`;

/** GET /<BINDING>/<key>: one KV get, the raw value back as JSON. */
export const ONE_GET = `export default {
  async fetch(request, env) {
    const [, binding, key] = new URL(request.url).pathname.split("/");
    const value = await env[binding].get(decodeURIComponent(key));
    return value === null ? new Response("missing", { status: 404 }) : new Response(value, { headers: { "content-type": "application/json" } });
  },
};`;

export interface BenchStack {
  urls: Record<WorkerName, string>;
  /** The production bundle the bench serves (bench/.out/worker.js). */
  bundlePath: string;
  adminToken: string;
  manifest: Manifest;
  /** Origin requests served so far (cache misses reaching the stub). */
  originHits(): number;
  /** CPU time workerd has used so far, in ms (user + system; undefined where /proc is not available). */
  workerdCpuMs(): number | undefined;
  kvOps(): Promise<{ requests: number; ops: KvOps }>;
  resetKvOps(): Promise<void>;
  /** Writes `count` keys `${prefix}${from..}` from inside workerd, not counted. */
  seed(binding: KvBinding, prefix: string, count: number): Promise<void>;
  dispose(): Promise<void>;
}

export async function startBenchStack(log: (line: string) => void): Promise<BenchStack> {
  log("building the production bundle and the counting entry…");
  const manifest = await build({ outfile: join(BENCH_OUT, "worker.js"), log });
  await build({ entry: join(ROOT, "bench/entry.ts"), outfile: join(BENCH_OUT, "counting.js"), log });
  await build({ entry: join(ROOT, "bench/plain.ts"), outfile: join(BENCH_OUT, "plain.js"), log });

  let originHits = 0;
  const origin = createServer((request, response) => {
    originHits += 1;
    const id = decodeURIComponent(request.url?.split("/").pop() ?? "");
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ id, name: `Product ${id}`, priceCents: 1999, tags: ["bench"] }));
  });
  origin.listen(0, "127.0.0.1");
  await once(origin, "listening");
  const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;

  const adminToken = "bench-admin-token";
  // Same namespace ids in every worker: they all see the same (in-memory) KV data.
  const kv = Object.fromEntries(KV_BINDINGS.map((binding) => [binding, `bench-${binding.toLowerCase()}`]));
  const text = { ADMIN_TOKEN: adminToken, ENVIRONMENT: "bench", ORIGIN_URL: originUrl, BUNDLE_SHA256: manifest.sha256 };
  const worker = (name: string, source: { scriptPath: string } | { script: string }, withBindings = true) =>
    localWorker({ name, ...source, kv, ...(withBindings ? { text } : {}), directSocket: true });
  const mf = new Miniflare({
    workers: [
      worker("production", { scriptPath: join(BENCH_OUT, "worker.js") }),
      worker("counting", { scriptPath: join(BENCH_OUT, "counting.js") }),
      worker("fixed-200", { script: FIXED_200 }, false),
      worker("one-get", { script: ONE_GET }, false),
      worker("plain", { scriptPath: join(BENCH_OUT, "plain.js") }),
    ],
  });
  try {
    await mf.ready;
  } catch (error) {
    origin.close();
    throw error;
  }
  const workerdPid = childPid("workerd");
  const urls = Object.fromEntries(
    await Promise.all(WORKER_NAMES.map(async (name) => [name, (await mf.unsafeGetDirectURL(name)).origin])),
  ) as Record<WorkerName, string>;
  log(`workerd ready: ${WORKER_NAMES.map((name) => `${name} ${urls[name]}`).join(", ")}; origin stub ${originUrl}`);

  const benchRoute = (path: string, init?: RequestInit) => fetch(`${urls.counting}/__bench/${path}`, init).then(ok);
  return {
    urls,
    bundlePath: join(BENCH_OUT, "worker.js"),
    adminToken,
    manifest,
    originHits: () => originHits,
    workerdCpuMs: () => processCpuMs(workerdPid),
    kvOps: async () => (await (await benchRoute("kv-ops")).json()) as { requests: number; ops: KvOps },
    resetKvOps: async () => void (await benchRoute("kv-ops", { method: "DELETE" })),
    async seed(binding, prefix, count) {
      // Chunks stay under the 1000 KV operations one invocation may make.
      for (let from = 0; from < count; from += 500) {
        const params = new URLSearchParams({ binding, prefix, from: String(from), count: String(Math.min(500, count - from)) });
        await benchRoute(`seed?${params}`, { method: "POST" });
      }
    },
    async dispose() {
      await mf.dispose();
      await new Promise<void>((resolve) => closeServer(origin, resolve));
    },
  };
}

/**
 * The pid of this process's child named `name` (Miniflare spawns workerd), from
 * /proc; undefined elsewhere. CPU time per request is steadier than req/s on a
 * shared machine: waiting for a core does not count.
 */
export function childPid(name: string): number | undefined {
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = readStat(Number(entry));
      if (stat?.ppid === process.pid && stat.comm === name) return Number(entry);
    }
  } catch {
    // No /proc: CPU figures are left out.
  }
  return undefined;
}

/** User + system CPU time of `pid` in ms. */
export function processCpuMs(pid: number | undefined): number | undefined {
  const stat = pid === undefined ? undefined : readStat(pid);
  return stat && ((stat.utime + stat.stime) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** A process's resident memory in MiB, from /proc; NaN where it cannot be read. */
export const residentMiB = (pid: number | undefined) => ((pid === undefined ? undefined : readStat(pid)?.rssPages) ?? NaN) * PAGE_BYTES / 2 ** 20;
const PAGE_BYTES = 4096;

/** Linux's USER_HZ, 100 on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Fields of /proc/<pid>/stat (see proc(5)); the command name may hold spaces, so fields count from its closing parenthesis. */
export function readStat(pid: number): { comm: string; ppid: number; utime: number; stime: number; rssPages: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" ");
  return {
    comm: text.slice(text.indexOf("(") + 1, close),
    ppid: Number(fields[1]),
    utime: Number(fields[11]),
    stime: Number(fields[12]),
    rssPages: Number(fields[21]),
  };
}

async function ok(response: Response): Promise<Response> {
  if (!response.ok) throw new Error(`${response.url}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

function closeServer(server: Server, done: () => void) {
  server.closeAllConnections();
  server.close(() => done());
}
