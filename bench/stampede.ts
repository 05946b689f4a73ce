/**
 * Origin fetches per burst of concurrent misses of one product id, over real
 * HTTP to the local stack (one workerd isolate): the stampede the product
 * cache's hand-off (worker/src/handoff.ts) bounds.
 *
 *   npx tsx bench/stampede.ts [--concurrency 100] [--rounds 10] [--origin-ms 100]
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { startLocalStack } from "../scripts/start";

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "100" },
    rounds: { type: "string", default: "10" },
    "origin-ms": { type: "string", default: "100" },
  },
});
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const originMs = Number(values["origin-ms"]);

const hits = new Map<string, number>();
const origin = createServer((request, response) => {
  const id = request.url?.split("/").pop() ?? "";
  hits.set(id, (hits.get(id) ?? 0) + 1);
  setTimeout(() => response.end(JSON.stringify({ id })), originMs);
});
origin.keepAliveTimeout = 60_000;
origin.listen(0, "127.0.0.1");
await once(origin, "listening");
const stack = await startLocalStack({
  port: 0,
  ephemeral: true,
  adminToken: "stampede",
  originUrl: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
});

const perRound: number[] = [];
const statuses = new Map<number, number>();
for (let round = 0; round < rounds; round++) {
  const id = `stampede-${Date.now()}-${round}`;
  const answers = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const res = await fetch(`${stack.url}/api/products/${id}`);
      await res.arrayBuffer();
      return res.status;
    }),
  );
  for (const status of answers) statuses.set(status, (statuses.get(status) ?? 0) + 1);
  perRound.push(hits.get(id) ?? 0);
}
await stack.dispose();
origin.closeAllConnections();
origin.close();

const sorted = [...perRound].sort((a, b) => a - b);
console.log(`${rounds} bursts of ${concurrency} concurrent misses of one new id, origin answering in ${originMs} ms:`);
console.log(`  origin fetches per burst: ${perRound.join(", ")} (median ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted.at(-1)})`);
console.log(`  answers: ${[...statuses].map(([status, count]) => `${count}× ${status}`).join(", ")}`);
