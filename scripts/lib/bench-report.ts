/**
 * The benchmark's results: their shape (bench/results.json, also read by
 * `npm run cost`), the console table and BENCHMARKS.md.
 */
import { readFileSync } from "node:fs";
import { cpus, loadavg, platform, release } from "node:os";
import { join } from "node:path";
import { ROOT } from "../build";
import type { KvOps } from "./bench-stack";
import type { StartupProfile, StartupResult } from "./startup";

export const RESULTS_PATH = join(ROOT, "bench/results.json");
export const REPORT_PATH = join(ROOT, "BENCHMARKS.md");
/** Written by a 10-minute `npm run soak`; rendered into BENCHMARKS.md next to the bench's figures. */
export const SOAK_PATH = join(ROOT, "bench/soak.json");
/** Every 10-minute soak's summary (no samples), oldest first: the runs of record. */
export const SOAK_RUNS_PATH = join(ROOT, "bench/soak-runs.json");

/** The bundle's startup CPU time may be at most this multiple of a fixed-200 Worker's (issue 13). */
export const STARTUP_BUDGET_RATIO = 1.5;

export interface ScenarioResult {
  name: string;
  description: string;
  /** The reference worker it is compared with; null when none applies (purge). */
  reference: "fixed-200" | "one-get" | null;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  referenceRequestsPerSecond: number | null;
  ratio: number | null;
  /** workerd CPU time per request, app and reference (null where it was not measured). */
  cpuUsPerRequest: number | null;
  referenceCpuUsPerRequest: number | null;
  /** The same request on the plain-fetch reference (bench/plain.ts), for the read routes it serves. */
  plainRequestsPerSecond: number | null;
  plainCpuUsPerRequest: number | null;
  kvOpsPerRequest: KvOps;
  originFetchesPerRequest: number;
  beyondReference: string;
  targets: { label: string; met: boolean; detail: string }[];
}

export interface Target {
  label: string;
  check: (result: ScenarioResult) => { met: boolean; detail: string };
}

export interface SoakSample {
  atSeconds: number;
  requests: number;
  errors: number;
  /** What the errors were, when there were any: `connection`, `timeout`, or `<status> <route>`, with counts. */
  errorKinds?: Record<string, number>;
  p99Ms: number;
  rssMiB: number;
  /** The Worker's live heap (a heap snapshot's total, through workerd's inspector), in the samples the memory check compares. */
  heapMiB?: number;
  /** workerd's "different request context" warnings in this sample (requests whose continuations it cancelled). */
  crossRequestWarnings?: number;
}

export interface SoakResults {
  generatedAt: string;
  minutes: number;
  connections: number;
  distinctIds: number;
  requests: number;
  errors: number;
  unreadableSessions: number;
  p99Ms: number;
  rssAfterWarmupMiB: number;
  rssAtEndMiB: number;
  memoryGrowth: number;
  /** The Worker's own memory: its isolate's live heap (the pass criterion since issue 18). */
  heapAfterWarmupMiB?: number;
  heapAtEndMiB?: number;
  heapGrowth?: number;
  /** What workerd logged during the run: cancelled continuations, and origin fetches that lost their connection. */
  runtime?: { crossRequestWarnings: number; connectionLost: number };
  /** The commit the run measured (`git rev-parse --short HEAD`, with `+dirty` for uncommitted changes). */
  commit?: string;
  passed: boolean;
  samples: SoakSample[];
}

export type SoakSummary = Omit<SoakResults, "samples">;

export interface BenchResults {
  generatedAt: string;
  mode: "full" | "quick";
  machine: ReturnType<typeof machineInfo> & { loadAverageAfter: number[] };
  settings: { connections: number; secondsPerRun: number; rounds: number; countedRequests: number };
  bundle: { sha256: string; bytes: number; gzipBytes: number };
  /** `wrangler check startup` medians; absent from quick runs and from results before it was measured. */
  startup?: StartupResult | null;
  scenarios: ScenarioResult[];
  durationSeconds: number;
}

export function machineInfo() {
  const version = (pkg: string) => (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    os: `${platform()} ${release()}`,
    node: process.version,
    miniflare: version("miniflare"),
    workerd: version("workerd"),
    autocannon: version("autocannon"),
    loadAverageBefore: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

const fixed = (n: number | null, digits = 0) => (n === null ? "–" : n.toFixed(digits));
const ops = (o: KvOps) => [o.read, o.write, o.delete, o.list].map((n) => (Number.isInteger(n) ? String(n) : n.toFixed(2))).join("/");
const verdict = (r: ScenarioResult) => {
  const missed = r.targets.filter((t) => !t.met);
  return missed.length === 0 ? "met" : `MISSED ${missed.map((t) => t.label).join(", ")}`;
};

function rows(results: BenchResults): string[][] {
  return results.scenarios.map((r) => [
    r.name,
    fixed(r.requestsPerSecond),
    fixed(r.p50Ms, 1),
    fixed(r.p99Ms, 1),
    String(r.errors),
    r.reference === null ? "–" : `${fixed(r.referenceRequestsPerSecond)} (${r.reference})`,
    r.ratio === null ? "–" : `${r.ratio.toFixed(2)}×`,
    plainColumn(r),
    cpuColumn(r),
    ops(r.kvOpsPerRequest),
    verdict(r),
  ]);
}

/** App ÷ plain is what the framework costs; results from before the plain reference have no such figure. */
function plainColumn(r: ScenarioResult): string {
  const plain = r.plainRequestsPerSecond ?? null;
  return plain === null ? "–" : `${fixed(plain)} (${(r.requestsPerSecond / plain).toFixed(2)}×)`;
}

/** workerd CPU µs per request: app / reference / plain. */
function cpuColumn(r: ScenarioResult): string {
  const cells = [r.cpuUsPerRequest, r.referenceCpuUsPerRequest, r.plainCpuUsPerRequest].map((n) => n ?? null);
  if (cells[0] === null) return "–";
  return cells.map((n) => fixed(n)).join(" / ");
}

const HEADER = [
  "scenario",
  "req/s",
  "p50 ms",
  "p99 ms",
  "errors",
  "reference req/s",
  "ratio",
  "plain req/s (app ÷ plain)",
  "CPU µs/req app / ref / plain",
  "KV r/w/d/l per req",
  "targets",
];

/** Fixed-width table for the terminal. */
export function renderTable(results: BenchResults): string {
  const table = [HEADER, ...rows(results)];
  const widths = HEADER.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

function startupLines(results: BenchResults): string[] {
  const st = results.startup;
  if (!st) return ["## Startup", "", "Not measured in this run: a quick run skips it, and results from before issue 13 have no such figure; a full `npm run bench` measures it.", ""];
  const ratio = st.bundle.windowMs / st.fixed200.windowMs;
  const runs = (xs: StartupProfile[], key: keyof StartupProfile) => xs.map((x) => x[key]).join(", ");
  return [
    "## Startup",
    "",
    `| Worker | size | gzip | startup phase (median of ${st.runs}) | CPU sampled active (median) | phase, each run (ms) | active, each run (ms) |`,
    "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    `| dist/worker.js | ${results.bundle.bytes} B | ${results.bundle.gzipBytes} B | ${st.bundle.windowMs.toFixed(1)} ms | ${st.bundle.activeMs.toFixed(1)} ms | ${runs(st.bundleRuns, "windowMs")} | ${runs(st.bundleRuns, "activeMs")} |`,
    `| fixed-200 | – | – | ${st.fixed200.windowMs.toFixed(1)} ms | ${st.fixed200.activeMs.toFixed(1)} ms | ${runs(st.fixed200Runs, "windowMs")} | ${runs(st.fixed200Runs, "activeMs")} |`,
    "",
    `- ${ratio <= STARTUP_BUDGET_RATIO ? "met" : "**missed**"}: startup phase ≤ ${STARTUP_BUDGET_RATIO}× a fixed-200 Worker's — ${ratio.toFixed(2)}×.`,
    `- Measured with wrangler ${st.wrangler}'s \`wrangler check startup\`: offline, the bundle uploaded as-is (\`no_bundle\`, as the Pulumi program uploads it) and its startup phase profiled in a local workerd. "Startup phase" is the profile's window (the runtime's own start plus our module's evaluation); "CPU sampled active" is the CPU time the profiler caught running JavaScript in it. A profile holds only a handful of samples (about one per millisecond at best), so a fixed-200 Worker's active time is mostly 0 and a ratio of active times means nothing; the budget is checked on the phase, and the active figure is the bundle's own absolute cost. Runs alternate between the two Workers. Cloudflare's limit on startup is 1 s of CPU.`,
    "",
  ];
}

const pct = (ratio: number) => `${(ratio * 100).toFixed(1)} %`;

function soakLines(soak: SoakResults | undefined, runs: readonly SoakSummary[] = []): string[] {
  if (!soak) return ["## Soak", "", "No soak figures yet: run `npm run soak -- --minutes 10`.", ""];
  const growth = `${(soak.memoryGrowth * 100).toFixed(1)} %`;
  const every = Math.max(1, Math.ceil(soak.samples.length / 12));
  const warnings = (run: SoakSummary) => (run.runtime ? String(run.runtime.crossRequestWarnings) : "not counted");
  const lost = (run: SoakSummary) => (run.runtime ? String(run.runtime.connectionLost) : "not counted");
  return [
    "## Soak",
    "",
    `\`npm run soak -- --minutes ${soak.minutes}\`, ${soak.generatedAt}: the local stack under the load test's mixed load (create and read a session, evaluate a flag, read two products, an OFREP bulk evaluation), ` +
      `${soak.connections} connections, flags and products cycling through ${soak.distinctIds} distinct names and ids; workerd sampled every 10 s and its log read for warnings.`,
    "",
    `- ${soak.passed ? "passed" : "**failed**"}: ${soak.requests} requests, ${soak.errors} errors, ${soak.unreadableSessions} unreadable sessions, worst p99 ${soak.p99Ms} ms; ` +
      `workerd warned ${warnings(soak)} times of a request whose continuations it cancelled, and logged ${lost(soak)} lost origin connections.`,
    ...(soak.heapGrowth === undefined
      ? []
      : [
          `- the Worker's live heap (the total of a heap snapshot through workerd's inspector, which V8 takes after a full GC, 2 s after the load stops; the least of three samples) ${soak.heapAfterWarmupMiB} MiB after the warm-up, ${soak.heapAtEndMiB} MiB at the end: ${pct(soak.heapGrowth)} (limit 10 %); its flag cache, refresh hand-offs and origin back-off are bounded maps.`,
        ]),
    `- workerd resident memory ${soak.rssAfterWarmupMiB} MiB after the warm-up, ${soak.rssAtEndMiB} MiB at the end: ${growth}. It includes Miniflare's KV, in the same process, which grows with the data the run stores (sessions, products) whatever the Worker does: see "Where the memory goes" in the analysis.`,
    "",
    "| at | requests | errors | p99 ms | workerd RSS MiB | live heap MiB |",
    "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ...soak.samples.filter((_, i) => i % every === every - 1 || i === 0).map((x) => `| ${x.atSeconds} s | ${x.requests} | ${x.errors} | ${x.p99Ms} | ${x.rssMiB} | ${x.heapMiB ?? "–"} |`),
    "",
    ...(runs.length === 0
      ? []
      : [
          "### Runs of record",
          "",
          "Every 10-minute soak, oldest first (bench/soak-runs.json).",
          "",
          "| finished | commit | minutes | connections | requests | errors | cross-request warnings | lost origin connections | unreadable sessions | worst p99 ms | live heap growth | workerd RSS growth | result |",
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
          ...runs.map(
            (run) =>
              `| ${run.generatedAt} | ${run.commit ?? "?"} | ${run.minutes} | ${run.connections} | ${run.requests} | ${run.errors} | ${warnings(run)} | ${lost(run)} | ${run.unreadableSessions} | ${run.p99Ms} | ${run.heapGrowth === undefined ? "not measured" : pct(run.heapGrowth)} | ${pct(run.memoryGrowth)} | ${run.passed ? "passed" : "failed"} |`,
          ),
          "",
        ]),
  ];
}

export function renderMarkdown(results: BenchResults, analysis?: string, soak?: SoakResults, soakRuns?: readonly SoakSummary[]): string {
  const m = results.machine;
  const s = results.settings;
  const missed = results.scenarios.flatMap((r) => r.targets.filter((t) => !t.met).map((t) => ({ r, t })));
  const lines = [
    "# Benchmarks",
    "",
    "Generated by `npm run bench`" + (results.mode === "quick" ? " `--quick` (short runs: indicative only)" : "") + `, ${results.generatedAt}.`,
    "Do not edit by hand: re-run the benchmark; the analysis at the end comes from `bench/analysis.md` (`npm run bench -- --render` re-renders this file without measuring).",
    "Monthly KV cost from these figures: `npm run cost -- --requests-per-month 10000000`.",
    "",
    "## How these figures were taken",
    "",
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.os}; load average ${m.loadAverageBefore.join(" / ")} before, ${m.loadAverageAfter.join(" / ")} after (1/5/15 min).`,
    `- Node ${m.node}, miniflare ${m.miniflare}, workerd ${m.workerd}, autocannon ${m.autocannon}; bundle ${results.bundle.bytes} B (${results.bundle.gzipBytes} B gzip), sha256 \`${results.bundle.sha256.slice(0, 16)}…\`.`,
    "- One Miniflare instance runs five Workers, each on its own loopback port: the production bundle (unwrapped), the same app behind `bench/entry.ts` which counts KV operations, a reference that returns a fixed 200 (the runtime's ceiling), a reference that does exactly one KV `get` (the ceiling for a KV-bound endpoint), and `plain` (`bench/plain.ts`): the read routes as one plain `fetch` handler on the app's own stores and responses, without a framework. App ÷ plain is what Hono costs; plain ÷ reference is what our own code costs. KV is Miniflare's local implementation, so absolute figures say little about Cloudflare's network; the ratios and the KV operation counts are what carry over.",
    "- CPU µs/req is workerd's CPU time (user + system, from /proc) during each run divided by its requests: steadier than req/s on a shared machine, since time spent waiting for a core does not count.",
    `- Load: autocannon, ${s.connections} connections, ${s.rounds} round(s) of ${s.secondsPerRun} s per worker after a warm-up. Each scenario's reference run sits next to its app run, alternating which goes first, so machine noise hits both alike. req/s is total over all rounds; p50 is the median round's, p99 the worst round's (autocannon records latency in whole milliseconds, so 0 means under 1 ms).`,
    `- KV operations per request: ${s.countedRequests} requests per scenario on the counting Worker after a warm-up (steady state: a hot flag is in the isolate's cache). Columns are reads/writes/deletes/lists.`,
    "- The machine was shared with other work while these figures were taken: compare ratios, not absolute req/s, and re-run on a quiet machine for publishable numbers.",
    "",
    "## Results",
    "",
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map((_, i) => (i === 0 || i === HEADER.length - 1 ? " --- " : " ---: ")).join("|")}|`,
    ...rows(results).map((row) => `| ${row.join(" | ")} |`),
    "",
    ...results.scenarios.map((r) => `- **${r.name}**: ${r.description}.`),
    "",
    "## Targets",
    "",
    ...results.scenarios.flatMap((r) => r.targets.map((t) => `- ${t.met ? "met" : "**missed**"}: ${r.name} ${t.label} — ${t.detail}`)),
    "",
  ];
  if (missed.length > 0) {
    lines.push("### Why targets were missed", "");
    for (const { r, t } of missed) {
      lines.push(
        `- ${r.name} (${t.label}, measured ${t.detail}): ` +
          (t.label.includes("×") ? `beyond its reference, the app routes the request (Hono), then ${r.beyondReference}.` : "see the scenario's KV operation counts and errors above."),
      );
    }
    if (analysis) lines.push("", "The hand-written analysis below explains these figures.");
    lines.push("");
  }
  lines.push(...startupLines(results), ...soakLines(soak, soakRuns));
  if (analysis) lines.push(analysis.trim(), "");
  return `${lines.join("\n")}\n`;
}
