/**
 * A long run of the local stack under the load test's mixed load, sampling
 * workerd every 10 s: requests, errors, p99 and resident memory, and reading
 * its log. Fails when any request fails, workerd warns once of a request whose
 * continuations it cancelled, or the Worker's live heap after the warm-up
 * grows by more than 10 %; the
 * flags and products it touches keep changing (`--distinct` ids), so the
 * isolate's in-memory maps must stay bounded for it to pass. Not part of
 * `npm test`.
 *
 *   npm run soak [-- --minutes 10] [--connections 200] [--distinct 20000] [--out bench/soak.json]
 *   npm run soak -- --probe [--levels 50,100,200,400,800] [--seconds 10]
 *
 * A run of 10 minutes or more writes bench/soak.json, appends its summary to
 * bench/soak-runs.json (the runs of record) and re-renders BENCHMARKS.md; a
 * shorter one writes only where --out says. `--probe` finds
 * the highest connection count the local stack holds with no error and every
 * session readable afterwards (LOAD_TEST_CONNECTIONS below records it).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readSoakRuns, renderMarkdownFromFiles } from "./bench";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { REPORT_PATH, SOAK_PATH, SOAK_RUNS_PATH, type SoakResults, type SoakSample } from "./lib/bench-report";
import { childPid, residentMiB } from "./lib/bench-stack";
import { isolateLiveHeapMiB } from "./lib/isolate-heap";
import { errorKinds, loadErrors, mixedLoad, startLoadTarget, unreadableSessions } from "./lib/mixed-load";
import { LOCAL_WORKER_NAME } from "./start";

/**
 * Connections `npm test`'s load test runs at: the lower of 200 and the highest
 * count `npm run soak -- --probe` found the local stack holding with 0 errors
 * and every session readable on the shared 2-core development machine (200 held,
 * 400 did not: connection resets and 10 s timeouts; bench/analysis.md, "Load test").
 */
export const LOAD_TEST_CONNECTIONS = 200;

/** The soak's default: the connection count the load test runs at, held for minutes. */
const SOAK_CONNECTIONS = 200;
const SAMPLE_SECONDS = 10;
/** Samples in each of the memory check's two windows (after the warm-up, at the end). */
const MEMORY_WINDOW = 3;
/**
 * Allowed growth of the Worker's live heap (a heap snapshot's total) from the
 * end of the warm-up to the end of the run. workerd's resident memory is
 * reported too, but it holds Miniflare's KV, which grows with the data the
 * run stores whatever the Worker does (bench/analysis.md, "Where the memory goes").
 */
const MAX_MEMORY_GROWTH = 0.1;

export interface SoakOptions {
  minutes: number;
  connections: number;
  distinctIds: number;
  log?: (line: string) => void;
}

export async function runSoak(options: SoakOptions): Promise<SoakResults> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dataDir = await mkdtemp(join(tmpdir(), "soak-kv-"));
  log(`starting the local stack (KV persisted in ${dataDir}, so stored data is not counted as workerd memory)…`);
  const target = await startLoadTarget({ dataDir, inspector: true });
  try {
    const pid = childPid("workerd");
    if (pid === undefined) throw new CliError("cannot find the workerd process in /proc: the soak samples its memory and needs Linux");
    const rssMiB = () => residentMiB(pid);
    const heapMiB = async () => Math.round((await isolateLiveHeapMiB(target.stack.mf, LOCAL_WORKER_NAME)) * 100) / 100;
    const chunks = Math.max(1, Math.round((options.minutes * 60) / SAMPLE_SECONDS));
    // The first fifth of the run (2 minutes of a 10-minute soak) fills caches, JIT-compiles and lets workerd's
    // own memory settle (bench/analysis.md: a fixed-200 Worker's workerd grows too, then levels off).
    const warmupChunks = Math.floor(chunks / 5);
    // The memory check compares the MEMORY_WINDOW samples after the warm-up with the last MEMORY_WINDOW.
    const inMemoryWindows = (i: number) => (i >= warmupChunks && i < warmupChunks + MEMORY_WINDOW) || i >= chunks - MEMORY_WINDOW;
    log(
      `soak: ${options.minutes} min of mixed load, ${options.connections} connections, ${options.distinctIds} distinct flag names and product ids; ` +
        `sampling every ${SAMPLE_SECONDS} s (warm-up ${warmupChunks * SAMPLE_SECONDS} s)`,
    );
    log(`workerd pid ${pid}, ${rssMiB().toFixed(1)} MiB resident before the load; the Worker's live heap ${await heapMiB()} MiB`);
    const samples: SoakSample[] = [];
    let offset = 0;
    let lastCreated: string[] = [];
    const { runtime } = target;
    for (let i = 0; i < chunks; i++) {
      const warningsBefore = runtime.crossRequest;
      const { result, created, failed } = await mixedLoad(target, { connections: options.connections, seconds: SAMPLE_SECONDS, distinctIds: options.distinctIds, offset });
      offset += result.requests.total;
      lastCreated = created;
      const sample: SoakSample = {
        atSeconds: (i + 1) * SAMPLE_SECONDS,
        requests: result.requests.total,
        errors: loadErrors(result),
        ...(loadErrors(result) > 0 ? { errorKinds: errorKinds(result, failed) } : {}),
        p99Ms: result.latency.p99,
        rssMiB: Math.round(rssMiB() * 10) / 10,
        // A heap snapshot pauses the isolate, so only the samples the memory check compares take one, once
        // the load has stopped and the requests it cut off have settled: what is left is what the isolate keeps.
        ...(inMemoryWindows(i) ? { heapMiB: await settled(heapMiB) } : {}),
        crossRequestWarnings: runtime.crossRequest - warningsBefore,
      };
      samples.push(sample);
      const kinds = sample.errorKinds ? ` (${Object.entries(sample.errorKinds).map(([kind, count]) => `${count} ${kind}`).join(", ")})` : "";
      const warned = sample.crossRequestWarnings ? `  ${sample.crossRequestWarnings} cross-request warnings` : "";
      log(`  ${String(sample.atSeconds).padStart(5)} s  ${String(sample.requests).padStart(7)} requests  ${sample.errors} errors${kinds}${warned}  p99 ${sample.p99Ms} ms  ${sample.rssMiB} MiB${sample.heapMiB === undefined ? "" : `  live heap ${sample.heapMiB} MiB`}`);
    }
    const unreadable = await unreadableSessions(target, lastCreated.slice(0, 2000));
    const mean = (xs: SoakSample[], of: (s: SoakSample) => number) => xs.reduce((sum, s) => sum + of(s), 0) / xs.length;
    const afterWarmup = samples.slice(warmupChunks, warmupChunks + MEMORY_WINDOW);
    const atEnd = samples.slice(-MEMORY_WINDOW);
    const rss = (s: SoakSample) => s.rssMiB;
    const heap = (s: SoakSample) => s.heapMiB ?? NaN;
    const rssGrowth = mean(atEnd, rss) / mean(afterWarmup, rss) - 1;
    // The least of each window's three: a snapshot can still catch a little of the last requests' state,
    // never less than what the isolate keeps.
    const floor = (xs: SoakSample[]) => Math.min(...xs.map(heap));
    const heapGrowth = floor(atEnd) / floor(afterWarmup) - 1;
    const errors = samples.reduce((sum, s) => sum + s.errors, 0);
    const requests = samples.reduce((sum, s) => sum + s.requests, 0);
    const soak: SoakResults = {
      generatedAt: new Date().toISOString(),
      minutes: options.minutes,
      connections: options.connections,
      distinctIds: options.distinctIds,
      requests,
      errors,
      unreadableSessions: unreadable.length,
      p99Ms: Math.max(...samples.map((s) => s.p99Ms)),
      rssAfterWarmupMiB: Math.round(mean(afterWarmup, rss) * 10) / 10,
      rssAtEndMiB: Math.round(mean(atEnd, rss) * 10) / 10,
      memoryGrowth: rssGrowth,
      heapAfterWarmupMiB: floor(afterWarmup),
      heapAtEndMiB: floor(atEnd),
      heapGrowth,
      runtime: { crossRequestWarnings: runtime.crossRequest, connectionLost: runtime.connectionLost },
      commit: currentCommit(),
      passed: errors === 0 && runtime.crossRequest === 0 && unreadable.length === 0 && heapGrowth <= MAX_MEMORY_GROWTH,
      samples,
    };
    log("");
    log(
      `soak: ${requests} requests in ${options.minutes} min (${Math.round(requests / (options.minutes * 60))} req/s), ${errors} errors, ` +
        `worst p99 ${soak.p99Ms} ms; the Worker's live heap ${soak.heapAfterWarmupMiB} MiB after warm-up → ${soak.heapAtEndMiB} MiB at the end ` +
        `(${(heapGrowth * 100).toFixed(1)} %, limit ${MAX_MEMORY_GROWTH * 100} %); workerd resident ${soak.rssAfterWarmupMiB} → ${soak.rssAtEndMiB} MiB ` +
        `(${(rssGrowth * 100).toFixed(1)} %, Miniflare's KV included); ${unreadable.length} of the last ${Math.min(lastCreated.length, 2000)} sessions unreadable; ` +
        `workerd: ${runtime.crossRequest} cross-request warnings, ${runtime.connectionLost} lost origin connections`,
    );
    for (const line of runtime.samples) log(`  workerd: ${line}`);
    return soak;
  } finally {
    await target.dispose();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `measure` after the load's last requests and their waitUntil work have settled. */
async function settled<T>(measure: () => Promise<T>): Promise<T> {
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  return measure();
}
const SETTLE_MS = 2000;

/**
 * The short hash of HEAD, `+dirty` when the tree has uncommitted changes other
 * than the soak's and bench's own outputs (so the second of three runs in a
 * row is not marked dirty by the first's figures); undefined outside git.
 */
function currentCommit(): string | undefined {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!BENCHMARKS.md"], { encoding: "utf8" }).trim() !== "";
    return dirty ? `${head}+dirty` : head;
  } catch {
    return undefined;
  }
}

/** Steps the connection count up until a run fails; returns the highest that held. */
export async function probeConnections(levels: number[], seconds: number, log: (line: string) => void): Promise<number> {
  let held = 0;
  for (const connections of levels) {
    const target = await startLoadTarget();
    try {
      const { result, created } = await mixedLoad(target, { connections, seconds });
      const unreadable = await unreadableSessions(target, created);
      const errors = loadErrors(result);
      log(
        `  ${String(connections).padStart(4)} connections: ${result.requests.total} requests, ${errors} errors ` +
          `(${result.errors} connection, ${result.timeouts} timeouts, ${result.non2xx} non-2xx), p99 ${result.latency.p99} ms, ` +
          `${unreadable.length} of ${created.length} sessions unreadable`,
      );
      if (errors > 0 || unreadable.length > 0) break;
      held = connections;
    } finally {
      await target.dispose();
    }
  }
  return held;
}

if (isMain(import.meta.url)) {
  runCommand("soak", async () => {
    const { values } = parseFlags(() =>
      parseArgs({
        options: {
          minutes: { type: "string", default: "10" },
          connections: { type: "string", default: String(SOAK_CONNECTIONS) },
          distinct: { type: "string", default: "20000" },
          out: { type: "string" },
          probe: { type: "boolean", default: false },
          levels: { type: "string", default: "50,100,200,400,800" },
          seconds: { type: "string", default: "10" },
        },
      }),
    );
    const positive = (name: string, raw: string) => {
      const n = Number(raw);
      if (!(n > 0)) throw new CliError(`--${name} must be a positive number, got ${raw}`);
      return n;
    };
    if (values.probe) {
      const levels = values.levels.split(",").map((level) => positive("levels", level));
      console.log(`probing connection counts ${levels.join(", ")} (${values.seconds} s each, a fresh stack each)…`);
      const held = await probeConnections(levels, positive("seconds", values.seconds), (line) => console.log(line));
      console.log(`highest connection count held with 0 errors and every session readable: ${held || "none"}`);
      console.log(`npm test's load test runs at min(that, 200) = ${Math.min(held, 200)}; it now runs at ${LOAD_TEST_CONNECTIONS} (LOAD_TEST_CONNECTIONS in scripts/soak.ts)`);
      if (held === 0) throw new CliError("the local stack failed at the lowest level");
      return;
    }
    const minutes = positive("minutes", values.minutes);
    const soak = await runSoak({ minutes, connections: positive("connections", values.connections), distinctIds: positive("distinct", values.distinct) });
    // Only a run as long as the report's (10 minutes) replaces the committed soak figures.
    const out = values.out ?? (minutes >= 10 ? SOAK_PATH : undefined);
    if (out) {
      await writeFile(out, `${JSON.stringify(soak, null, 2)}\n`);
      console.log(`wrote ${out}`);
      if (out === SOAK_PATH) {
        const { samples: _samples, ...summary } = soak;
        await writeFile(SOAK_RUNS_PATH, `${JSON.stringify([...(await readSoakRuns()), summary], null, 2)}\n`);
        console.log(`appended the run to ${SOAK_RUNS_PATH}`);
        await writeFile(REPORT_PATH, await renderMarkdownFromFiles());
        console.log(`re-rendered ${REPORT_PATH}`);
      }
    } else console.log("shorter than 10 minutes: wrote no files (pass --out to keep the figures)");
    if (!soak.passed) throw new CliError("the soak failed: see errors, unreadable sessions and memory growth above");
  });
}
