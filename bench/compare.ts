/**
 * A/B tool for experiments on the hot paths: runs several builds of the
 * Worker side by side in ONE workerd with the fixed-200 and one-get
 * references, drives the same request at each in many short interleaved
 * rounds, and prints req/s and workerd CPU µs per request (median over
 * rounds) with ratios to the references. Figures from it are recorded in
 * bench/analysis.md; `npm run bench` stays the report of record.
 *
 *   npx tsx bench/compare.ts --worker main=bench/.out/main.js --worker now=dist/worker.js \
 *     [--scenario flag-eval|session-read|cache-hit] [--rounds 6] [--seconds 2] [--connections 10]
 */
import { parseArgs } from "node:util";
import autocannon, { type RequestStep } from "autocannon";
import { Miniflare } from "miniflare";
import {
  CACHE_STALE_SECONDS,
  COMPATIBILITY_DATE,
  COMPATIBILITY_FLAGS,
  encodeFlag,
  encodeSession,
  flagKey,
  KV_BINDINGS,
  productKey,
  sessionKey,
} from "../worker/src/contract";
import { childPid, FIXED_200, ONE_GET, processCpuMs } from "../scripts/lib/bench-stack";
import { localWorker } from "../scripts/lib/local-worker";

const SESSION_ID = "b".repeat(32);
const SCENARIOS = {
  "flag-eval": { path: "/api/features/bench-flag-000", reference: "fixed-200", users: true },
  "session-read": { path: `/sessions/${SESSION_ID}`, reference: "one-get", users: false },
  "cache-hit": { path: "/api/products/bench-hit", reference: "one-get", users: false },
} as const;
const REFERENCE_PATHS = {
  "flag-eval": "/",
  "session-read": `/SESSIONS/${encodeURIComponent(sessionKey(SESSION_ID))}`,
  "cache-hit": `/CACHE/${encodeURIComponent(productKey("bench-hit"))}`,
} as const;

const { values } = parseArgs({
  options: {
    worker: { type: "string", multiple: true, default: [] },
    scenario: { type: "string", default: "flag-eval" },
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "2" },
    connections: { type: "string", default: "10" },
  },
});
const scenarioName = values.scenario as keyof typeof SCENARIOS;
const scenario = SCENARIOS[scenarioName];
if (!scenario) throw new Error(`--scenario: one of ${Object.keys(SCENARIOS).join(", ")}`);
const builds = values.worker.map((spec) => {
  const [name, path] = spec.split("=");
  if (!name || !path) throw new Error(`--worker name=path.js, got ${spec}`);
  return { name, path };
});

const kv = Object.fromEntries(KV_BINDINGS.map((binding) => [binding, `compare-${binding.toLowerCase()}`]));
const text = { ADMIN_TOKEN: "t", ENVIRONMENT: "bench", ORIGIN_URL: "http://127.0.0.1:9" };
const mf = new Miniflare({
  workers: [
    ...builds.map((b) => localWorker({ name: b.name, scriptPath: b.path, kv, text, directSocket: true })),
    localWorker({ name: "fixed-200", script: FIXED_200, kv, directSocket: true }),
    localWorker({ name: "one-get", script: ONE_GET, kv, directSocket: true }),
  ],
});
await mf.ready;
const pid = childPid("workerd");
const names = [...builds.map((b) => b.name), scenario.reference];
const urls = Object.fromEntries(await Promise.all(names.map(async (n) => [n, (await mf.unsafeGetDirectURL(n)).origin]))) as Record<string, string>;

const now = Date.now();
const { value: flagValue, metadata: flagMetadata } = encodeFlag({ enabled: true, percentage: 25 });
await (await mf.getKVNamespace("CONFIG")).put(flagKey("bench-flag-000"), flagValue, { metadata: flagMetadata });
const session = { userId: "u", email: "u@example.com", roles: [], createdAt: new Date(now).toISOString(), expiresAt: new Date(now + 86_400_000).toISOString() };
await (await mf.getKVNamespace("SESSIONS")).put(sessionKey(SESSION_ID), encodeSession(session));
await (await mf.getKVNamespace("CACHE")).put(productKey("bench-hit"), JSON.stringify({ id: "bench-hit", priceCents: 1999 }), {
  metadata: { fetchedAt: now, ttlSeconds: CACHE_STALE_SECONDS },
});

let user = 0;
async function drive(name: string, seconds: number) {
  const path = name === scenario.reference ? REFERENCE_PATHS[scenarioName] : scenario.path;
  const step: RequestStep = scenario.users ? { path, setupRequest: (r) => ({ ...r, path: `${path}?userId=u-${user++ % 10_000}` }) } : { path };
  const before = processCpuMs(pid);
  const result = await autocannon({ url: urls[name]!, connections: Number(values.connections), duration: seconds, requests: [step] });
  const cpu = (processCpuMs(pid) ?? NaN) - (before ?? NaN);
  if (result.non2xx + result.errors > 0) throw new Error(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { rps: result.requests.total / result.duration, cpuUs: (cpu * 1000) / result.requests.total };
}

const samples = new Map(names.map((n) => [n, [] as { rps: number; cpuUs: number }[]]));
for (const n of names) await drive(n, 1);
for (let round = 0; round < Number(values.rounds); round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  for (const n of order) samples.get(n)!.push(await drive(n, Number(values.seconds)));
}
await mf.dispose();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ref = samples.get(scenario.reference)!;
console.log(`${scenarioName}: ${values.rounds} rounds × ${values.seconds}s, ${values.connections} connections; medians, ratio per round then median`);
for (const n of names) {
  const s = samples.get(n)!;
  const ratios = s.map((x, i) => x.rps / ref[i]!.rps);
  console.log(
    `${n.padEnd(12)} ${median(s.map((x) => x.rps)).toFixed(0).padStart(6)} req/s  ${median(s.map((x) => x.cpuUs)).toFixed(1).padStart(6)} µs CPU/req  ` +
      `ratio to ${scenario.reference} ${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
  );
}
