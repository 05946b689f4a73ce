/**
 * What the stack's scheduled backups cost a month: KV reads and lists to copy
 * the namespaces, R2 operations and storage to keep the copies, for the
 * `backups` setting's schedule and retention. Priced from the engine's own
 * arithmetic (worker/src/backup): a list and a bulk read per page of 1000
 * keys, one part, state and manifest write per page, one read of the state per
 * slice and per continuation tick.
 */
import type { BackupsConfig } from "../../worker/src/backup/config";
import { CONTINUE_CRON } from "../../worker/src/backup/format";
import { DEFAULT_OPS_BUDGET, DEFAULT_PAGE_SIZE, pagesPerSlice } from "../../worker/src/backup/ops";

/** R2 Standard storage, from https://developers.cloudflare.com/r2/pricing/ (checked 2026-12-05). */
export const R2_PRICING = {
  usdPerGbMonth: 0.015,
  usdPerMillion: { classA: 4.5, classB: 0.36 },
  includedPerMonth: { gbMonth: 10, classA: 1_000_000, classB: 10_000_000 },
} as const;
/** KV, as scripts/cost.ts prices it. */
const KV = { read: 0.5, list: 5 } as const;

const MINUTES_PER_MONTH = 30 * 24 * 60;

/** How often a five-field cron fires in a 30-day month (numbers, `*`, ranges, steps and lists; no L, W or #). */
export function cronRunsPerMonth(cron: string): number {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) throw new Error(`"${cron}" is not a five-field cron expression`);
  const [minute, hour, dom, month, dow] = fields.map((field, i) => matcher(field, [[0, 59], [0, 23], [1, 31], [1, 12], [0, 6]][i] as [number, number]));
  let runs = 0;
  // A 30-day month starting on a Monday (2026-06-01): the day-of-week fields see every weekday four or five times.
  const start = Date.UTC(2026, 5, 1);
  for (let m = 0; m < MINUTES_PER_MONTH; m++) {
    const t = new Date(start + m * 60_000);
    const domMatch = dom!(t.getUTCDate());
    const dowMatch = dow!(t.getUTCDay());
    // Cron's rule: when both day fields are restricted, either may match.
    const day = fields[2] !== "*" && fields[4] !== "*" ? domMatch || dowMatch : domMatch && dowMatch;
    if (minute!(t.getUTCMinutes()) && hour!(t.getUTCHours()) && day && month!(t.getUTCMonth() + 1)) runs += 1;
  }
  return runs;
}

function matcher(field: string, [lo, hi]: [number, number]): (value: number) => boolean {
  const allowed = new Set<number>();
  for (const part of field.split(",")) {
    const match = /^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/.exec(part);
    if (!match) throw new Error(`cron field "${field}" uses syntax the cost estimate does not read (L, W, # or names)`);
    const [from, to] = match[1] === "*" ? [lo, hi] : match[1]!.split("-").map(Number).concat(match[1]!.includes("-") ? [] : [NaN]);
    const end = Number.isNaN(to) ? (match[2] ? hi : from!) : to!;
    for (let v = from!; v <= end; v += Number(match[2] ?? 1)) allowed.add(v === 7 && hi === 6 ? 0 : v);
  }
  return (value) => allowed.has(value);
}

export interface BackupCostInput {
  backups: BackupsConfig;
  /** Keys across the backed-up namespaces. */
  keys: number;
  /** Bytes of one NDJSON line: key, value, metadata, expiration. */
  bytesPerKey: number;
}

export interface BackupCost {
  runsPerMonth: number;
  slicesPerRun: number;
  kv: { reads: number; lists: number; usd: number };
  r2: { classA: number; classB: number; gbMonth: number; usd: number; usdAfterIncluded: number };
  usd: number;
}

export function backupCost({ backups, keys, bytesPerKey }: BackupCostInput): BackupCost {
  const runsPerMonth = cronRunsPerMonth(backups.schedule);
  const namespaces = backups.namespaces.length;
  const pages = Math.max(namespaces, Math.ceil(keys / DEFAULT_PAGE_SIZE));
  const first = pagesPerSlice(DEFAULT_OPS_BUDGET, DEFAULT_PAGE_SIZE, true);
  const slicesPerRun = 1 + Math.max(0, Math.ceil((pages - first) / pagesPerSlice(DEFAULT_OPS_BUDGET, DEFAULT_PAGE_SIZE)));
  // Per run: KV reads every key once (bulk reads bill per key) and lists once per page.
  const kvReads = keys * runsPerMonth;
  const kvLists = pages * runsPerMonth;
  // R2 class A (writes): the state when started, its lease per slice, per page a part and the state,
  // per namespace a manifest, and the run record. Class B (reads): the state, per slice and per continuation tick.
  const classA = (1 + slicesPerRun + 2 * pages + namespaces + 1) * runsPerMonth;
  const classB = (1 + slicesPerRun) * runsPerMonth + cronRunsPerMonth(CONTINUE_CRON);
  const kept = Math.min(runsPerMonth * (backups.retainDays / 30), runsPerMonth * 12 * 10);
  const gbMonth = (kept * keys * bytesPerKey) / 1e9;
  const kvUsd = (kvReads / 1e6) * KV.read + (kvLists / 1e6) * KV.list;
  const r2Usd = (classA / 1e6) * R2_PRICING.usdPerMillion.classA + (classB / 1e6) * R2_PRICING.usdPerMillion.classB + gbMonth * R2_PRICING.usdPerGbMonth;
  const r2AfterIncluded =
    (Math.max(0, classA - R2_PRICING.includedPerMonth.classA) / 1e6) * R2_PRICING.usdPerMillion.classA +
    (Math.max(0, classB - R2_PRICING.includedPerMonth.classB) / 1e6) * R2_PRICING.usdPerMillion.classB +
    Math.max(0, gbMonth - R2_PRICING.includedPerMonth.gbMonth) * R2_PRICING.usdPerGbMonth;
  return {
    runsPerMonth,
    slicesPerRun,
    kv: { reads: kvReads, lists: kvLists, usd: kvUsd },
    r2: { classA, classB, gbMonth, usd: r2Usd, usdAfterIncluded: r2AfterIncluded },
    usd: kvUsd + r2Usd,
  };
}
