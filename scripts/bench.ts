/**
 * Benchmarks the Worker against reference Workers in the same workerd:
 * throughput and latency from the production bundle, KV operations per
 * request from the counting entry (bench/entry.ts). Prints a table, writes
 * bench/results.json and BENCHMARKS.md. Figures, not assertions: the targets
 * are reported as met or missed.
 *
 *   npm run bench [-- --quick] [--only <scenario,…>] [--results <path>] [--report <path>]
 *   npm run bench -- --render    (rewrites BENCHMARKS.md from bench/results.json, e.g. after editing bench/analysis.md)
 *
 * `--only flag-eval,cache-hit` runs just those scenarios (`purge` for the purge),
 * to iterate on one endpoint. A partial or quick run only prints its table: it
 * writes results and a report only where `--results`/`--report` say, so it
 * never replaces the committed full-run figures.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon, { type RequestStep } from "autocannon";
import { flagKey, productKey, sessionKey } from "../worker/src/contract";
import { ROOT } from "./build";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import {
  type BenchResults,
  machineInfo,
  renderMarkdown,
  renderTable,
  REPORT_PATH,
  RESULTS_PATH,
  type ScenarioResult,
  SOAK_PATH,
  SOAK_RUNS_PATH,
  type SoakResults,
  type SoakSummary,
  type Target,
} from "./lib/bench-report";
import { measureStartup } from "./lib/startup";
import { startBenchStack, type BenchStack, type KvOps } from "./lib/bench-stack";

/** Hand-written analysis of the figures, quoted in BENCHMARKS.md under the generated tables. */
const ANALYSIS_PATH = join(ROOT, "bench/analysis.md");

export interface BenchOptions {
  quick?: boolean;
  /** Scenario names to run (SCENARIO_NAMES); all when absent. */
  only?: string[];
  resultsPath?: string;
  reportPath?: string;
  log?: (line: string) => void;
}

interface Settings {
  connections: number;
  secondsPerRun: number;
  rounds: number;
  warmupSeconds: number;
  /** Requests sent to the counting worker per scenario to measure KV operations. */
  countedRequests: number;
  purgeKeys: number;
}

const FULL: Settings = { connections: 10, secondsPerRun: 5, rounds: 3, warmupSeconds: 1, countedRequests: 500, purgeKeys: 5000 };
/** Under a minute: checks that everything runs; its figures are indicative only. Seeding 5000 keys twice alone takes ~20 s. */
const QUICK: Settings = { connections: 10, secondsPerRun: 1, rounds: 1, warmupSeconds: 0.5, countedRequests: 100, purgeKeys: 1000 };

/** `wrangler check startup` runs per Worker: a profile holds a few samples, so the median of several is reported. */
const STARTUP_RUNS = 7;

const FLAG_COUNT = 100;
const HOT_FLAG = "bench-flag-000";
const flagName = (i: number) => `bench-flag-${String(i).padStart(3, "0")}`;
/** A flag in flagd's format with a targeting rule: string variants, a prefix match, else a 10 % fractional split. */
const RULE_FLAG = "bench-rule";
const RULE_FLAG_DEFINITION = {
  state: "ENABLED",
  variants: { gold: "Welcome back", plain: "Welcome", beta: "Try the new checkout" },
  defaultVariant: "plain",
  targeting: { if: [{ starts_with: [{ var: "targetingKey" }, "u-1"] }, "gold", { fractional: [["beta", 10], ["plain", 90]] }] },
};
/** Distinct users the flag evaluation cycles through, as a product page would see them. */
const FLAG_EVAL_USERS = 10_000;

/** What `--only` accepts; `purge` is the purge of `purgeKeys` keys. */
export const SCENARIO_NAMES = ["session-read", "session-create", "flag-eval", "flag-eval-rule", "flag-list", "cache-hit", "cache-miss", "purge"] as const;
type ScenarioName = (typeof SCENARIO_NAMES)[number];

interface Scenario {
  name: Exclude<ScenarioName, "purge">;
  description: string;
  reference: "fixed-200" | "one-get";
  /** Request against the reference worker. */
  referenceStep: RequestStep;
  /** Request against the app (production and counting workers). */
  step: RequestStep;
  /** The same request against the plain-fetch reference (bench/plain.ts), for the read routes it serves. */
  plainStep?: RequestStep;
  targets: Target[];
  /** What the endpoint does beyond its reference, after routing and middleware: quoted when a ratio target is missed. */
  beyondReference: string;
}

function scenarios(fixtures: { sessionId: string; sessionKey: string; adminToken: string }): Scenario[] {
  const admin = { authorization: `Bearer ${fixtures.adminToken}` };
  let misses = 0;
  let evaluations = 0;
  // One user per request, cycling: each evaluation hashes a different `<flag>:<userId>`.
  // The reference gets the same query so both sides cost autocannon the same per request.
  const nextUser = (path: string) => (request: RequestStep) => ({ ...request, path: `${path}?userId=u-${evaluations++ % FLAG_EVAL_USERS}` });
  const ratioAtLeast = (min: number, reference: string): Target => ({
    label: `≥ ${min}× ${reference}`,
    check: (r) => ({ met: (r.ratio ?? 0) >= min, detail: `${(r.ratio ?? 0).toFixed(2)}×` }),
  });
  const kvOpsEqual = (expected: number, label: string): Target => ({
    label,
    check: (r) => ({ met: totalOps(r.kvOpsPerRequest) === expected, detail: `${round(totalOps(r.kvOpsPerRequest))} KV ops/request` }),
  });
  const originFetchesEqual = (expected: number, label: string): Target => ({
    label,
    check: (r) => ({ met: r.originFetchesPerRequest === expected, detail: `${round(r.originFetchesPerRequest)} origin fetches/request` }),
  });
  return [
    {
      name: "session-read",
      description: "GET /sessions/:id of an existing session",
      reference: "one-get",
      referenceStep: { path: `/SESSIONS/${encodeURIComponent(fixtures.sessionKey)}` },
      step: { path: `/sessions/${fixtures.sessionId}` },
      plainStep: { path: `/sessions/${fixtures.sessionId}` },
      targets: [ratioAtLeast(0.95, "one-get")],
      beyondReference: "decodes and validates the stored session, checks its expiry and re-serialises it",
    },
    {
      name: "session-create",
      description: "POST /sessions (admin), one new session per request",
      reference: "one-get",
      referenceStep: { path: `/SESSIONS/${encodeURIComponent(fixtures.sessionKey)}` },
      step: {
        method: "POST",
        path: "/sessions",
        headers: { ...admin, "content-type": "application/json" },
        body: JSON.stringify({ userId: "u-bench", email: "bench@example.com", roles: ["reader"] }),
      },
      targets: [],
      beyondReference: "checks the admin token, validates the body, generates an id and writes to KV",
    },
    {
      name: "flag-eval",
      description: `GET /api/features/${HOT_FLAG}?userId=… (hot flag, 25% rollout, ${FLAG_EVAL_USERS} distinct users in turn)`,
      reference: "fixed-200",
      referenceStep: { path: "/", setupRequest: nextUser("/") },
      step: { path: `/api/features/${HOT_FLAG}`, setupRequest: nextUser(`/api/features/${HOT_FLAG}`) },
      plainStep: { path: `/api/features/${HOT_FLAG}`, setupRequest: nextUser(`/api/features/${HOT_FLAG}`) },
      targets: [
        ratioAtLeast(0.8, "fixed-200"),
        kvOpsEqual(0, "no KV operation on the hot path"),
      ],
      beyondReference: "validates the name and query and hashes `<flag>:<userId>` (MurmurHash3) for the rollout bucket",
    },
    {
      name: "flag-eval-rule",
      description: `GET /api/features/${RULE_FLAG}?userId=… (hot flagd flag: string variants, starts_with then a fractional split, ${FLAG_EVAL_USERS} users)`,
      reference: "fixed-200",
      referenceStep: { path: "/", setupRequest: nextUser("/") },
      step: { path: `/api/features/${RULE_FLAG}`, setupRequest: nextUser(`/api/features/${RULE_FLAG}`) },
      targets: [ratioAtLeast(0.7, "fixed-200"), kvOpsEqual(0, "no KV operation on the hot path")],
      beyondReference: "validates the name and query and interprets the flag's JSON Logic rule (starts_with, fractional: MurmurHash3 of flag key + user)",
    },
    {
      name: "flag-list",
      description: `GET /api/features (admin) with ${FLAG_COUNT} flags`,
      reference: "one-get",
      referenceStep: { path: `/CONFIG/${encodeURIComponent(flagKey(HOT_FLAG))}` },
      step: { path: "/api/features", headers: admin },
      targets: [kvOpsEqual(1, `1 KV operation for ${FLAG_COUNT} flags`)],
      beyondReference: `lists ${FLAG_COUNT} keys with metadata and serialises ${FLAG_COUNT} flags`,
    },
    {
      name: "cache-hit",
      description: "GET /api/products/:id, fresh copy in KV",
      reference: "one-get",
      referenceStep: { path: `/CACHE/${encodeURIComponent(productKey("bench-hit"))}` },
      step: { path: "/api/products/bench-hit" },
      plainStep: { path: "/api/products/bench-hit" },
      targets: [ratioAtLeast(0.95, "one-get"), originFetchesEqual(0, "no origin fetch")],
      beyondReference: "reads the value with its metadata and checks freshness",
    },
    {
      name: "cache-miss",
      description: "GET /api/products/:id, new id each request, local origin stub",
      reference: "one-get",
      referenceStep: { path: `/CACHE/${encodeURIComponent(productKey("bench-hit"))}` },
      step: { path: "/api/products/miss", setupRequest: (request) => ({ ...request, path: `/api/products/miss-${++misses}` }) },
      targets: [originFetchesEqual(1, "one origin fetch per miss")],
      beyondReference: "fetches the origin and writes the copy to KV",
    },
  ];
}

export async function runBench(options: BenchOptions = {}): Promise<BenchResults> {
  const log = options.log ?? ((line: string) => console.log(line));
  const settings = options.quick ? QUICK : FULL;
  const started = Date.now();
  const machine = machineInfo();
  const stack = await startBenchStack(log);
  try {
    log("seeding: 1 session, 100 flags, 1 cached product…");
    const fixtures = await seed(stack);
    const list = scenarios({ ...fixtures, adminToken: stack.adminToken }).filter((s) => !options.only || options.only.includes(s.name));

    log(`counting KV operations (${settings.countedRequests} requests per scenario on the counting worker)…`);
    const counted = new Map<string, { kvOps: KvOps; originPerRequest: number }>();
    for (const scenario of list) counted.set(scenario.name, await countKvOps(stack, scenario.step, settings));

    log(
      `driving ${list.length} scenarios: ${settings.rounds} round(s) × ${settings.secondsPerRun}s per worker, ` +
        `${settings.connections} connections, reference and app interleaved…`,
    );
    const runs = new Map(list.map((s) => [s.name, { app: [] as Run[], reference: [] as Run[], plain: [] as Run[] }]));
    for (let roundIndex = 0; roundIndex < settings.rounds; roundIndex++) {
      for (const scenario of list) {
        const pair = runs.get(scenario.name)!;
        const sides: [Run[], (seconds: number) => Promise<Run>][] = [
          [pair.reference, (seconds) => drive(stack, stack.urls[scenario.reference], scenario.referenceStep, seconds, settings.connections)],
          [pair.app, (seconds) => drive(stack, stack.urls.production, scenario.step, seconds, settings.connections)],
        ];
        const plainStep = scenario.plainStep;
        if (plainStep) sides.push([pair.plain, (seconds) => drive(stack, stack.urls.plain, plainStep, seconds, settings.connections)]);
        if (roundIndex === 0) for (const [, run] of sides) await run(settings.warmupSeconds);
        // Reverse the order every other round so that drift in machine load favours no side.
        for (const [into, run] of roundIndex % 2 === 0 ? sides : [...sides].reverse()) into.push(await run(settings.secondsPerRun));
        const plain = pair.plain.length ? `, plain: ${summarise(pair.plain.at(-1)!)}` : "";
        log(`  round ${roundIndex + 1} ${scenario.name}: ${summarise(pair.app.at(-1)!)} (${scenario.reference}: ${summarise(pair.reference.at(-1)!)}${plain})`);
      }
    }

    const results: ScenarioResult[] = list.map((scenario) => {
      const pair = runs.get(scenario.name)!;
      const app = combine(pair.app);
      const reference = combine(pair.reference);
      const plain = pair.plain.length ? combine(pair.plain) : null;
      const { kvOps, originPerRequest } = counted.get(scenario.name)!;
      return evaluate(
        {
          name: scenario.name,
          description: scenario.description,
          reference: scenario.reference,
          requestsPerSecond: app.requestsPerSecond,
          p50Ms: app.p50Ms,
          p99Ms: app.p99Ms,
          errors: app.errors,
          referenceRequestsPerSecond: reference.requestsPerSecond,
          ratio: app.requestsPerSecond / reference.requestsPerSecond,
          cpuUsPerRequest: app.cpuUsPerRequest,
          referenceCpuUsPerRequest: reference.cpuUsPerRequest,
          plainRequestsPerSecond: plain?.requestsPerSecond ?? null,
          plainCpuUsPerRequest: plain?.cpuUsPerRequest ?? null,
          kvOpsPerRequest: kvOps,
          originFetchesPerRequest: originPerRequest,
          beyondReference: scenario.beyondReference,
          targets: [],
        },
        scenario.targets,
      );
    });

    if (!options.only || options.only.includes("purge")) {
      log(`purging ${settings.purgeKeys} keys through DELETE /api/cache (production, then counting worker)…`);
      results.push(await benchPurge(stack, settings.purgeKeys));
    }

    let startup: BenchResults["startup"] = null;
    if (!options.quick && !options.only) {
      log(`profiling startup with wrangler check startup (${STARTUP_RUNS} runs each, bundle and fixed-200 alternating)…`);
      startup = await measureStartup(stack.bundlePath, STARTUP_RUNS, log);
    }

    const output: BenchResults = {
      generatedAt: new Date().toISOString(),
      mode: options.quick ? "quick" : "full",
      machine: { ...machine, loadAverageAfter: machineInfo().loadAverageBefore },
      settings: {
        connections: settings.connections,
        secondsPerRun: settings.secondsPerRun,
        rounds: settings.rounds,
        countedRequests: settings.countedRequests,
      },
      bundle: { sha256: stack.manifest.sha256, bytes: stack.manifest.bytes, gzipBytes: stack.manifest.gzipBytes },
      startup,
      scenarios: results,
      durationSeconds: (Date.now() - started) / 1000,
    };
    log("");
    log(renderTable(output));
    const { resultsPath, reportPath } = outputPaths(options);
    if (resultsPath) await writeFile(resultsPath, `${JSON.stringify(output, null, 2)}\n`);
    if (reportPath) await writeFile(reportPath, renderMarkdown(output, await readAnalysis(), (await readSoak()) ?? undefined, await readSoakRuns()));
    const missed = results.flatMap((r) => r.targets.filter((t) => !t.met).map((t) => `${r.name}: ${t.label} (${t.detail})`));
    log("");
    log(missed.length === 0 ? "all targets met" : `targets missed:\n  ${missed.join("\n  ")}`);
    const written = [resultsPath, reportPath].filter(Boolean);
    const why = options.only ? "partial run (--only)" : "quick run (--quick)";
    log(`${written.length ? `wrote ${written.join(" and ")}` : `${why}: wrote no files`} in ${output.durationSeconds.toFixed(0)}s`);
    return output;
  } finally {
    await stack.dispose();
  }
}

/**
 * Where a run writes. Only a full run replaces the committed figures
 * (bench/results.json, BENCHMARKS.md); a partial (--only) or quick run writes
 * only where --results/--report say.
 */
export function outputPaths(options: Pick<BenchOptions, "quick" | "only" | "resultsPath" | "reportPath">) {
  const full = !options.quick && !options.only;
  return { resultsPath: options.resultsPath ?? (full ? RESULTS_PATH : undefined), reportPath: options.reportPath ?? (full ? REPORT_PATH : undefined) };
}

async function seed(stack: BenchStack): Promise<{ sessionId: string; sessionKey: string }> {
  const base = stack.urls.production;
  const admin = { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" };
  const created = await call(`${base}/sessions`, { method: "POST", headers: admin, body: JSON.stringify({ userId: "u-bench", email: "bench@example.com" }) });
  const { sessionId } = (await created.json()) as { sessionId: string };
  for (let i = 0; i < FLAG_COUNT; i++) {
    const flag = i === 0 ? { enabled: true, percentage: 25 } : { enabled: i % 2 === 0, allowedUsers: [`u-${i}`], metadata: { owner: "bench" } };
    await call(`${base}/api/features/${flagName(i)}`, { method: "PUT", headers: admin, body: JSON.stringify(flag) });
  }
  await call(`${base}/api/features/${RULE_FLAG}`, { method: "PUT", headers: admin, body: JSON.stringify(RULE_FLAG_DEFINITION) });
  await call(`${base}/api/products/bench-hit`);
  const hit = await call(`${base}/api/products/bench-hit`);
  if (hit.headers.get("x-cache") !== "HIT") throw new Error(`seeding: expected X-Cache: HIT, got ${hit.headers.get("x-cache")}`);
  return { sessionId, sessionKey: await sessionKey(sessionId) };
}

async function call(url: string, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`seeding: ${init?.method ?? "GET"} ${url} answered ${response.status}: ${await response.text()}`);
  return response;
}

interface Run {
  requests: number;
  seconds: number;
  /** workerd's CPU time during the run, in ms (null without /proc). */
  cpuMs: number | null;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

async function drive(stack: BenchStack, url: string, step: RequestStep, seconds: number, connections: number): Promise<Run> {
  const cpuBefore = stack.workerdCpuMs();
  const result = await autocannon({ url, connections, duration: seconds, timeout: 10, requests: [step] });
  const cpuAfter = stack.workerdCpuMs();
  return {
    requests: result.requests.total,
    seconds: result.duration,
    cpuMs: cpuBefore === undefined || cpuAfter === undefined ? null : cpuAfter - cpuBefore,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx + result.mismatches,
  };
}

/** Rounds have equal length: throughput is total over total; p50 the median round's, p99 the worst round's. */
function combine(runs: Run[]) {
  const requests = runs.reduce((sum, r) => sum + r.requests, 0);
  const seconds = runs.reduce((sum, r) => sum + r.seconds, 0);
  const p50s = runs.map((r) => r.p50Ms).sort((a, b) => a - b);
  const cpuMs = runs.every((r) => r.cpuMs !== null) ? runs.reduce((sum, r) => sum + r.cpuMs!, 0) : null;
  return {
    requestsPerSecond: requests / seconds,
    cpuUsPerRequest: cpuMs === null || requests === 0 ? null : (cpuMs * 1000) / requests,
    p50Ms: p50s[Math.floor(p50s.length / 2)]!,
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

const summarise = (run: Run) => `${Math.round(run.requests / run.seconds)} req/s${run.errors ? `, ${run.errors} errors` : ""}`;

/** Steady-state KV operations per request: warm the isolate first, then count a fixed number of requests. */
async function countKvOps(stack: BenchStack, step: RequestStep, settings: Settings) {
  await send(stack.urls.counting, step, 20);
  await stack.resetKvOps();
  const originBefore = stack.originHits();
  await send(stack.urls.counting, step, settings.countedRequests);
  const { requests, ops } = await stack.kvOps();
  const perRequest = (n: number) => n / requests;
  return {
    kvOps: { read: perRequest(ops.read), write: perRequest(ops.write), delete: perRequest(ops.delete), list: perRequest(ops.list) },
    originPerRequest: perRequest(stack.originHits() - originBefore),
  };
}

/** Sends `count` requests, 5 at a time; any non-2xx answer aborts the bench (the counts would be wrong). */
async function send(base: string, step: RequestStep, count: number) {
  let sent = 0;
  const worker = async () => {
    while (sent++ < count) {
      const request = step.setupRequest?.({ ...step }, {}) ?? step;
      const response = await fetch(`${base}${request.path}`, { method: request.method ?? "GET", headers: request.headers ?? {}, body: request.body ?? null });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`counting worker answered ${response.status} to ${request.method ?? "GET"} ${request.path}`);
    }
  };
  await Promise.all(Array.from({ length: 5 }, worker));
}

async function benchPurge(stack: BenchStack, keys: number): Promise<ScenarioResult> {
  /** Purges `keys` seeded keys page by page; on the counting worker, also the KV operations of each call. */
  const run = async (worker: "production" | "counting") => {
    const prefix = productKey(`purge-${worker}-`);
    await stack.seed("CACHE", prefix, keys);
    const latencies: number[] = [];
    const opsPerCall: KvOps[] = [];
    let deleted = 0;
    let errors = 0;
    let cursor: string | undefined;
    const started = performance.now();
    for (;;) {
      const query = new URLSearchParams({ prefix, ...(cursor ? { cursor } : {}) });
      if (worker === "counting") await stack.resetKvOps();
      const t0 = performance.now();
      const response = await fetch(`${stack.urls[worker]}/api/cache?${query}`, { method: "DELETE", headers: { authorization: `Bearer ${stack.adminToken}` } });
      latencies.push(performance.now() - t0);
      if (worker === "counting") opsPerCall.push((await stack.kvOps()).ops);
      if (!response.ok) {
        errors += 1;
        break;
      }
      const page = (await response.json()) as { deleted: number; complete: boolean; cursor?: string };
      deleted += page.deleted;
      if (page.complete) break;
      cursor = page.cursor;
    }
    // A purge that reports done but left keys behind is a failure too.
    if (deleted !== keys) errors += 1;
    return { latencies, opsPerCall, seconds: (performance.now() - started) / 1000, errors, deleted };
  };

  const timed = await run("production");
  const counted = await run("counting");
  const sorted = [...timed.latencies].sort((a, b) => a - b);
  const percentile = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  const mean = (kind: keyof KvOps) => counted.opsPerCall.reduce((sum, ops) => sum + ops[kind], 0) / counted.opsPerCall.length;
  const mostInOneCall = Math.max(...counted.opsPerCall.map(totalOps));
  return evaluate(
    {
      name: `purge-${keys}`,
      description: `DELETE /api/cache?prefix=… until complete: ${keys} keys in ${timed.latencies.length} calls, ${timed.seconds.toFixed(2)}s (${Math.round(timed.deleted / timed.seconds)} keys/s)`,
      reference: null,
      requestsPerSecond: timed.latencies.length / timed.seconds,
      p50Ms: percentile(50),
      p99Ms: percentile(99),
      errors: timed.errors + counted.errors,
      referenceRequestsPerSecond: null,
      ratio: null,
      cpuUsPerRequest: null,
      referenceCpuUsPerRequest: null,
      plainRequestsPerSecond: null,
      plainCpuUsPerRequest: null,
      kvOpsPerRequest: { read: mean("read"), write: mean("write"), delete: mean("delete"), list: mean("list") },
      originFetchesPerRequest: 0,
      beyondReference: "",
      targets: [],
    },
    [
      // A Worker invocation may make at most 1000 KV operations.
      { label: "≤ 1000 KV operations in any one call", check: () => ({ met: mostInOneCall <= 1000, detail: `at most ${mostInOneCall} in one call` }) },
    ],
  );
}

export const readAnalysis = () => readFile(ANALYSIS_PATH, "utf8").catch(() => undefined);
const readSoak = async () => JSON.parse(await readFile(SOAK_PATH, "utf8").catch(() => "null")) as SoakResults | null;
export const readSoakRuns = async () => JSON.parse(await readFile(SOAK_RUNS_PATH, "utf8").catch(() => "[]")) as SoakSummary[];

/** BENCHMARKS.md from the committed results, soak figures and analysis. */
export async function renderMarkdownFromFiles(resultsPath = RESULTS_PATH): Promise<string> {
  const results = JSON.parse(await readFile(resultsPath, "utf8")) as BenchResults;
  return renderMarkdown(results, await readAnalysis(), (await readSoak()) ?? undefined, await readSoakRuns());
}

/** Every scenario also has the "0 errors" target. */
function evaluate(result: ScenarioResult, targets: Target[]): ScenarioResult {
  const all: Target[] = [...targets, { label: "0 errors", check: (r) => ({ met: r.errors === 0, detail: `${r.errors} errors` }) }];
  return { ...result, targets: all.map((t) => ({ label: t.label, ...t.check(result) })) };
}

const totalOps = (ops: KvOps) => ops.read + ops.write + ops.delete + ops.list;
const round = (n: number) => Math.round(n * 100) / 100;

if (isMain(import.meta.url)) {
  runCommand("bench", async () => {
    const { values } = parseFlags(() =>
      parseArgs({
        options: {
          quick: { type: "boolean", default: false },
          render: { type: "boolean", default: false },
          only: { type: "string" },
          results: { type: "string" },
          report: { type: "string" },
        },
      }),
    );
    const only = values.only?.split(",").map((name) => name.trim());
    const unknown = only?.filter((name) => !(SCENARIO_NAMES as readonly string[]).includes(name));
    if (unknown?.length) throw new CliError(`--only: unknown scenario ${unknown.join(", ")}; choose from ${SCENARIO_NAMES.join(", ")}`);
    if (values.render) {
      await writeFile(values.report ?? REPORT_PATH, await renderMarkdownFromFiles(values.results));
      console.log(`rendered ${values.report ?? REPORT_PATH} from ${values.results ?? RESULTS_PATH} and ${SOAK_PATH}`);
      return;
    }
    const output = await runBench({ quick: values.quick, only, resultsPath: values.results, reportPath: values.report });
    if (output.scenarios.some((s) => s.errors > 0)) throw new CliError("some requests failed; see the errors column");
  });
}
