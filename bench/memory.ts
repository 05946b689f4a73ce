/**
 * Where workerd's resident memory goes under load: the same traffic shape
 * against three Workers, each in a fresh workerd with KV persisted to disk
 * (as the soak runs it), sampling RSS every 10 s.
 *
 * - fixed-200: no KV at all (the runtime's own growth under requests);
 * - one-get: one KV get per request of a key from `--distinct` names that do
 *   not exist (the KV traffic of the soak's flag reads, without our code);
 * - production: our bundle, evaluating flags of `--distinct` unknown names and
 *   reading products of `--distinct` ids (misses, then hits), half and half.
 *
 *   npx tsx bench/memory.ts [--minutes 3] [--connections 200] [--distinct 20000] [--only fixed-200,one-get,production]
 */
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { Miniflare } from "miniflare";
import { KV_BINDINGS } from "../worker/src/contract";
import { build, ROOT } from "../scripts/build";
import { childPid, FIXED_200, ONE_GET, residentMiB } from "../scripts/lib/bench-stack";
import { localWorker } from "../scripts/lib/local-worker";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "3" },
    connections: { type: "string", default: "200" },
    distinct: { type: "string", default: "20000" },
    only: { type: "string", default: "fixed-200,one-get,production" },
  },
});
const minutes = Number(values.minutes);
const distinct = Number(values.distinct);
const SAMPLE_SECONDS = 10;

const origin = createServer((request, response) => response.end(JSON.stringify({ id: request.url?.split("/").pop() })));
origin.keepAliveTimeout = 60 * 60_000;
origin.listen(0, "127.0.0.1");
await once(origin, "listening");
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
const bundle = join(ROOT, "bench/.out/memory-worker.js");
await build({ outfile: bundle });

type Target = { name: string; source: { script: string } | { scriptPath: string }; path: (n: number) => string };
const targets: Target[] = [
  { name: "fixed-200", source: { script: FIXED_200 }, path: () => "/" },
  { name: "one-get", source: { script: ONE_GET }, path: (n) => `/CONFIG/${encodeURIComponent(`flag:missing-${n % distinct}`)}` },
  {
    name: "production",
    source: { scriptPath: bundle },
    path: (n) => (n % 2 === 0 ? `/api/features/missing-${(n >> 1) % distinct}?userId=u-${n}` : `/api/products/p-${(n >> 1) % distinct}`),
  },
];

const rows: string[] = [];
for (const target of targets.filter((t) => values.only.split(",").includes(t.name))) {
  const dataDir = await mkdtemp(join(tmpdir(), "memory-kv-"));
  const mf = new Miniflare({
    resourcePersistencePath: dataDir,
    workers: [
      localWorker({
        name: target.name,
        ...target.source,
        kv: Object.fromEntries(KV_BINDINGS.map((binding) => [binding, binding])),
        text: { ADMIN_TOKEN: "memory", ENVIRONMENT: "bench", ORIGIN_URL: originUrl },
        directSocket: true,
      }),
    ],
  });
  await mf.ready;
  const url = (await mf.unsafeGetDirectURL(target.name)).origin;
  const pid = childPid("workerd");
  const rss = () => Math.round(residentMiB(pid));
  const samples: number[] = [];
  let n = 0;
  let requests = 0;
  let failed = 0;
  console.log(`${target.name}: ${minutes} min at ${values.connections} connections; RSS ${rss()} MiB before`);
  for (let i = 0; i < (minutes * 60) / SAMPLE_SECONDS; i++) {
    const result = await autocannon({
      url,
      connections: Number(values.connections),
      duration: SAMPLE_SECONDS,
      requests: [{ setupRequest: (request) => ({ ...request, path: target.path(n++) }) }],
    });
    requests += result.requests.total;
    failed += result.errors;
    samples.push(rss());
  }
  await mf.dispose();
  await rm(dataDir, { recursive: true, force: true });
  // The soak's windows: mean of three samples after the first fifth, and of the last three.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const warm = Math.floor(samples.length / 5);
  const after = mean(samples.slice(warm, warm + 3));
  const end = mean(samples.slice(-3));
  const line = `${target.name}: ${requests} requests (${failed} connection errors or timeouts); RSS by 10 s: ${samples.join(" ")} MiB; after warm-up ${after.toFixed(0)} → end ${end.toFixed(0)} MiB (${((end / after - 1) * 100).toFixed(1)} %)`;
  console.log(line);
  rows.push(line);
}
origin.closeAllConnections();
origin.close();
console.log(`\n${rows.join("\n")}`);
