/**
 * Turns the KV operations per request measured by `npm run bench` into a
 * monthly KV bill, per scenario and for a mix of scenarios.
 *
 *   npm run cost -- --requests-per-month 10000000 [--mix flag-eval=0.6,session-read=0.3,cache-hit=0.1] [--results bench/results.json]
 *     [--bulk-pollers 10000 --poll-seconds 30 --isolates 100]   (OFREP bulk polling, before and after the isolate copy)
 *                   [--stack dev] [--backup-keys 10000] [--backup-bytes-per-key 300]
 *
 * Then the stack's scheduled backups (its `backups` setting): KV reads and
 * lists, R2 operations and storage, for `--backup-keys` keys in the backed-up
 * namespaces.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { loadStackConfig } from "../infra/stack-file";
import { backupCost } from "./lib/backup-cost";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { type BenchResults, RESULTS_PATH } from "./lib/bench-report";
import type { KvOps, OpKind } from "./lib/bench-stack";
import { FLAG_ISOLATE_TTL_SECONDS } from "../worker/src/contract";

/** Workers KV on the Workers Paid plan, from https://developers.cloudflare.com/kv/platform/pricing/ (checked 2026-11-25). */
export const KV_PRICING = {
  usdPerMillion: { read: 0.5, write: 5, delete: 5, list: 5 },
  includedPerMonth: { read: 10_000_000, write: 1_000_000, delete: 1_000_000, list: 1_000_000 },
} as const satisfies Record<string, KvOps>;

/** A plausible read-heavy product: flags on every page, sessions on most, the cache on product pages. */
export const DEFAULT_MIX: Record<string, number> = { "flag-eval": 0.6, "session-read": 0.2, "cache-hit": 0.15, "cache-miss": 0.03, "session-create": 0.02 };

const KINDS: OpKind[] = ["read", "write", "delete", "list"];

export interface Cost {
  /** Operations per month, by kind. */
  ops: KvOps;
  /** At list price, before the plan's included operations. */
  usd: number;
  /** After the plan's monthly included operations. */
  usdAfterIncluded: number;
}

/** The KV bill for `requests` requests a month, each making `opsPerRequest` operations. */
export function monthlyCost(opsPerRequest: KvOps, requests: number): Cost {
  const ops = Object.fromEntries(KINDS.map((kind) => [kind, opsPerRequest[kind] * requests])) as KvOps;
  const price = (count: (kind: OpKind) => number) => KINDS.reduce((sum, kind) => sum + (count(kind) / 1e6) * KV_PRICING.usdPerMillion[kind], 0);
  return {
    ops,
    usd: price((kind) => ops[kind]),
    usdAfterIncluded: price((kind) => Math.max(0, ops[kind] - KV_PRICING.includedPerMonth[kind])),
  };
}

/** Operations per request of a weighted mix of scenarios. */
export function mixOps(results: BenchResults, mix: Record<string, number>): KvOps {
  const ops: KvOps = { read: 0, write: 0, delete: 0, list: 0 };
  for (const [name, share] of Object.entries(mix)) {
    const scenario = results.scenarios.find((s) => s.name === name);
    if (!scenario) throw new CliError(`--mix names "${name}", which the results do not have (${results.scenarios.map((s) => s.name).join(", ")})`);
    for (const kind of KINDS) ops[kind] += share * scenario.kvOpsPerRequest[kind];
  }
  return ops;
}

/** Parses `name=share,...`; the shares must add up to 1. */
export function parseMix(text: string): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const part of text.split(",").filter(Boolean)) {
    const [name, share, ...rest] = part.split("=").map((s) => s.trim());
    const value = Number(share);
    if (!name || share === undefined || rest.length > 0 || !Number.isFinite(value) || value < 0) {
      throw new CliError(`--mix: "${part}" is not name=share (a share is a number between 0 and 1)`);
    }
    mix[name] = value;
  }
  const total = Object.values(mix).reduce((sum, share) => sum + share, 0);
  if (Math.abs(total - 1) > 0.001) throw new CliError(`--mix: the shares add up to ${round(total)}, not 1`);
  return mix;
}

export async function readResults(path = RESULTS_PATH): Promise<BenchResults> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as BenchResults;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new CliError(`no benchmark results at ${path}; run npm run bench first`);
    throw new CliError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * KV operations a scenario makes by design, for results measured before the
 * code changed: creating a session writes the session and its per-user index
 * entry (two writes; the bench before the index measured one).
 */
export const DESIGN_OPS: Record<string, KvOps> = { "session-create": { read: 0, write: 2, delete: 0, list: 0 } };

/** Results with each scenario at least at its design operations, and a note for each one raised. */
export function withDesignOps(results: BenchResults): { results: BenchResults; notes: string[] } {
  const notes: string[] = [];
  const scenarios = results.scenarios.map((scenario) => {
    const design = DESIGN_OPS[scenario.name];
    if (!design || KINDS.every((kind) => scenario.kvOpsPerRequest[kind] >= design[kind])) return scenario;
    const ops = Object.fromEntries(KINDS.map((kind) => [kind, Math.max(scenario.kvOpsPerRequest[kind], design[kind])])) as KvOps;
    notes.push(
      `${scenario.name}: priced at ${describeOps(ops)} per request as the code makes them; the results measured ${describeOps(scenario.kvOpsPerRequest)} (older code; npm run bench refreshes them).`,
    );
    return { ...scenario, kvOpsPerRequest: ops };
  });
  return { results: { ...results, scenarios }, notes };
}

const describeOps = (ops: KvOps) =>
  KINDS.filter((kind) => ops[kind] > 0).map((kind) => `${round(ops[kind])} ${kind}${ops[kind] === 1 ? "" : "s"}`).join(" + ") || "no operations";

/** A purge is priced per key purged, not per request: one call handles a page of keys. */
const isPurge = (name: string) => name.startsWith("purge-");

/** Cost of purging one million keys, from the operations one purge call made per key it deleted. */
export function purgeCostPerMillionKeys(opsPerCall: KvOps): number {
  const perKey = Object.fromEntries(KINDS.map((kind) => [kind, opsPerCall[kind] / opsPerCall.delete])) as KvOps;
  return monthlyCost(perKey, 1e6).usd;
}

/** The report `npm run cost` prints. */
export function renderCost(results: BenchResults, requests: number, mix: Record<string, number>): string {
  const head = ["scenario", "reads/month", "writes/month", "deletes/month", "lists/month", "USD/month", "after included"];
  const row = (name: string, cost: Cost) => [name, ...KINDS.map((kind) => count(cost.ops[kind])), usd(cost.usd), usd(cost.usdAfterIncluded)];
  const perRequest = results.scenarios.filter((s) => !isPurge(s.name));
  const rows = perRequest.map((s) => row(s.name, monthlyCost(s.kvOpsPerRequest, requests)));
  const mixName = `mix (${Object.entries(mix).map(([name, share]) => `${name} ${round(share * 100)}%`).join(", ")})`;
  rows.push(row("mix", monthlyCost(mixOps(results, mix), requests)));
  const table = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const p = KV_PRICING.usdPerMillion;
  const purges = results.scenarios
    .filter((s) => isPurge(s.name) && s.kvOpsPerRequest.delete > 0)
    .map((s) => `Purging (${s.name}): ${usd(purgeCostPerMillionKeys(s.kvOpsPerRequest))} per million keys purged, at list price.`);
  return [
    `KV cost for ${count(requests)} requests a month, every request of one scenario, then the ${mixName}.`,
    `Prices per million: reads ${usd(p.read)}, writes ${usd(p.write)}, deletes ${usd(p.delete)}, lists ${usd(p.list)} (Workers Paid; "after included" subtracts the plan's`,
    `monthly 10M reads and 1M each of writes, deletes and lists). KV operations per request measured by npm run bench on ${results.generatedAt.slice(0, 10)}.`,
    "",
    ...table.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")),
    ...(purges.length > 0 ? ["", ...purges] : []),
  ].join("\n");
}

/** OFREP web providers polling the bulk route: who polls, how often, and over how many isolates the Worker runs. */
export interface BulkPolling {
  pollers: number;
  pollSeconds: number;
  /** Isolates serving the polls at any time (all locations); each lists the flags at most once per trust window. */
  isolates: number;
}
export const DEFAULT_BULK_POLLING: BulkPolling = { pollers: 10_000, pollSeconds: 30, isolates: 100 };
const SECONDS_PER_MONTH = 30 * 86_400;

/**
 * The bulk route's KV lists a month. Before issue 19 every poll was a KV list
 * (one per 1000 flags); now each isolate lists at most once per trust window
 * (FLAG_ISOLATE_TTL_SECONDS), however many callers poll it. Lists are billed
 * like writes.
 */
export function bulkPollingCost({ pollers, pollSeconds, isolates }: BulkPolling, trustSeconds = FLAG_ISOLATE_TTL_SECONDS) {
  const polls = (pollers * SECONDS_PER_MONTH) / pollSeconds;
  const before = monthlyCost({ read: 0, write: 0, delete: 0, list: 1 }, polls);
  const windows = Math.min(polls, (isolates * SECONDS_PER_MONTH) / trustSeconds);
  const after = monthlyCost({ read: 0, write: 0, delete: 0, list: 1 }, windows);
  return { polls, before, after };
}

export function renderBulkPolling(polling: BulkPolling): string {
  const { polls, before, after } = bulkPollingCost(polling);
  return [
    `OFREP bulk polling (web providers): ${count(polling.pollers)} callers every ${polling.pollSeconds} s = ${count(polls)} polls a month, served by ${polling.isolates} isolates.`,
    `  before (one KV list per poll):                    ${count(before.ops.list)} lists, ${usd(before.usd)} (${usd(before.usdAfterIncluded)} after included)`,
    `  now (one list per isolate per ${FLAG_ISOLATE_TTL_SECONDS} s trust window): ${count(after.ops.list)} lists, ${usd(after.usd)} (${usd(after.usdAfterIncluded)} after included)`,
    `  (a flag set with $ref rules lists its evaluators too: twice the lists, still per window; 1000+ flags: one list per 1000)`,
  ].join("\n");
}

/** The backups paragraph: what the stack's schedule and retention cost for `keys` keys. */
export function renderBackupCost(stack: string, keys: number, bytesPerKey: number): string {
  const { backups } = loadStackConfig(stack);
  const cost = backupCost({ backups, keys, bytesPerKey });
  return [
    `Backups of stack ${stack} (${backups.namespaces.join(", ")} on "${backups.schedule}", kept ${backups.retainDays} days), ${count(keys)} keys of about ${bytesPerKey} B:`,
    `  ${cost.runsPerMonth} runs a month, ${cost.slicesPerRun} slice${cost.slicesPerRun === 1 ? "" : "s"} each; KV ${count(cost.kv.reads)} reads + ${count(cost.kv.lists)} lists = ${usd(cost.kv.usd)};`,
    `  R2 ${count(cost.r2.classA)} class A + ${count(cost.r2.classB)} class B operations, ${round(cost.r2.gbMonth)} GB-month stored = ${usd(cost.r2.usd)} (${usd(cost.r2.usdAfterIncluded)} after R2's included 1M class A, 10M class B, 10 GB).`,
    `  Total ${usd(cost.usd)} a month at list price.`,
  ].join("\n");
}

const round = (n: number) => Math.round(n * 1000) / 1000;
const usd = (n: number) => `$${n.toFixed(2)}`;
const count = (n: number) => (n >= 1e6 ? `${round(n / 1e6)}M` : n >= 1e3 ? `${round(n / 1e3)}k` : String(round(n)));

if (isMain(import.meta.url)) {
  runCommand("cost", async () => {
    const { values } = parseFlags(() =>
      parseArgs({
        options: {
          "requests-per-month": { type: "string" },
          mix: { type: "string" },
          results: { type: "string" },
          "bulk-pollers": { type: "string" },
          "poll-seconds": { type: "string" },
          isolates: { type: "string" },
          stack: { type: "string", default: "dev" },
          "backup-keys": { type: "string", default: "10000" },
          "backup-bytes-per-key": { type: "string", default: "300" },
        },
      }),
    );
    const requests = Number(values["requests-per-month"]);
    if (!values["requests-per-month"] || !Number.isFinite(requests) || requests < 0) {
      throw new CliError("give --requests-per-month <number>, e.g. --requests-per-month 10000000");
    }
    const backupKeys = Number(values["backup-keys"]);
    const bytesPerKey = Number(values["backup-bytes-per-key"]);
    if (!Number.isInteger(backupKeys) || backupKeys < 0) throw new CliError("--backup-keys must be a whole number of keys");
    if (!Number.isFinite(bytesPerKey) || bytesPerKey <= 0) throw new CliError("--backup-bytes-per-key must be a positive number");
    const mix = values.mix ? parseMix(values.mix) : DEFAULT_MIX;
    const { results, notes } = withDesignOps(await readResults(values.results));
    console.log(renderCost(results, requests, mix));
    if (notes.length > 0) console.log(["", ...notes].join("\n"));
    const positive = (name: string, fallback: number) => {
      const raw = values[name as "isolates"];
      const n = raw === undefined ? fallback : Number(raw);
      if (!Number.isFinite(n) || n <= 0) throw new CliError(`--${name} must be a positive number, got ${raw}`);
      return n;
    };
    console.log(`\n${renderBulkPolling({
      pollers: positive("bulk-pollers", DEFAULT_BULK_POLLING.pollers),
      pollSeconds: positive("poll-seconds", DEFAULT_BULK_POLLING.pollSeconds),
      isolates: positive("isolates", DEFAULT_BULK_POLLING.isolates),
    })}`);
    console.log(["", renderBackupCost(values.stack, backupKeys, bytesPerKey)].join("\n"));
  });
}
