import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../build";
import { bulkPollingCost, KV_PRICING, mixOps, monthlyCost, parseMix } from "../cost";
import type { BenchResults, ScenarioResult } from "../lib/bench-report";
import { backupCost, cronRunsPerMonth } from "../lib/backup-cost";

const scenario = (name: string, kvOpsPerRequest: ScenarioResult["kvOpsPerRequest"]) => ({ name, kvOpsPerRequest }) as ScenarioResult;
const RESULTS = {
  generatedAt: "2026-11-25T00:00:00.000Z",
  scenarios: [
    scenario("session-read", { read: 1, write: 0, delete: 0, list: 0 }),
    scenario("session-create", { read: 0, write: 1, delete: 0, list: 0 }),
    scenario("flag-eval", { read: 0, write: 0, delete: 0, list: 0 }),
    scenario("flag-list", { read: 0, write: 0, delete: 0, list: 1 }),
    scenario("purge-5000", { read: 0, write: 0, delete: 833.33, list: 1 }),
  ],
} as BenchResults;

describe("bulkPollingCost", () => {
  it("prices 10,000 browsers polling every 30 s at one list per poll before, one per isolate per trust window now", () => {
    const { polls, before, after } = bulkPollingCost({ pollers: 10_000, pollSeconds: 30, isolates: 100 });
    expect(polls).toBe(864_000_000);
    expect(before.usd).toBeCloseTo(4320, 6);
    expect(after.ops.list).toBe(8_640_000);
    expect(after.usd).toBeCloseTo(43.2, 6);
  });

  it("never counts more lists than polls (few callers, many isolates)", () => {
    const { polls, after } = bulkPollingCost({ pollers: 1, pollSeconds: 60, isolates: 500 });
    expect(after.ops.list).toBe(polls);
  });
});

describe("monthlyCost", () => {
  it("prices a million reads at $0.50 and a million writes, deletes or lists at $5 each", () => {
    expect(monthlyCost({ read: 1, write: 0, delete: 0, list: 0 }, 1e6).usd).toBeCloseTo(0.5);
    expect(monthlyCost({ read: 0, write: 1, delete: 1, list: 1 }, 1e6).usd).toBeCloseTo(15);
    expect(monthlyCost({ read: 2, write: 0.5, delete: 0, list: 0 }, 1e6).ops).toEqual({ read: 2e6, write: 5e5, delete: 0, list: 0 });
  });

  it("subtracts the plan's monthly included operations, never below zero", () => {
    const cost = monthlyCost({ read: 1, write: 1, delete: 0, list: 0 }, 12e6);
    expect(cost.usd).toBeCloseTo(12 * 0.5 + 12 * 5);
    // 2M reads over the 10M included, 11M writes over the 1M included.
    expect(cost.usdAfterIncluded).toBeCloseTo(2 * 0.5 + 11 * 5);
    expect(monthlyCost({ read: 1, write: 0, delete: 0, list: 0 }, 1e6).usdAfterIncluded).toBe(0);
    expect(KV_PRICING.includedPerMonth.read).toBe(10_000_000);
  });
});

describe("mixes", () => {
  it("weights each scenario's operations by its share", () => {
    expect(mixOps(RESULTS, { "session-read": 0.25, "session-create": 0.25, "flag-eval": 0.5 })).toEqual({ read: 0.25, write: 0.25, delete: 0, list: 0 });
  });

  it("parses name=share pairs whose shares add up to 1", () => {
    expect(parseMix("flag-eval=0.6,session-read=0.4")).toEqual({ "flag-eval": 0.6, "session-read": 0.4 });
    expect(() => parseMix("flag-eval=0.6,session-read=0.3")).toThrow(/add up to 0.9/);
    expect(() => parseMix("flag-eval")).toThrow(/not name=share/);
    expect(() => parseMix("flag-eval=-1,session-read=2")).toThrow(/not name=share/);
  });

  it("refuses a scenario the results do not have", () => {
    expect(() => mixOps(RESULTS, { "session-raed": 1 })).toThrow(/session-raed/);
  });
});

describe("backups", () => {
  const backups = { schedule: "0 3 * * *", retainDays: 30, namespaces: ["CONFIG", "SESSIONS"] as ("CONFIG" | "SESSIONS")[], lock: false };

  it("counts a cron's runs in a 30-day month", () => {
    expect(cronRunsPerMonth("0 3 * * *")).toBe(30);
    expect(cronRunsPerMonth("*/5 * * * *")).toBe(8640);
    expect(cronRunsPerMonth("0 */6 * * 1-5")).toBe(88);
    expect(cronRunsPerMonth("15 1 1,15 * *")).toBe(2);
    expect(() => cronRunsPerMonth("0 3 L * *")).toThrow(/does not read/);
  });

  it("prices 100,000 keys backed up daily: every key read once a run (bulk reads bill per key), a list per 1000, R2 writes per part", () => {
    const cost = backupCost({ backups, keys: 100_000, bytesPerKey: 300 });
    expect(cost.runsPerMonth).toBe(30);
    // 100 pages of 13 operations, 68 in a run's first 900-operation slice.
    expect(cost.slicesPerRun).toBe(2);
    expect(cost.kv).toEqual({ reads: 3_000_000, lists: 3000, usd: 3 * 0.5 + 0.003 * 5 });
    // Per run: state, 2 leases, 100 parts + 100 state saves, 2 manifests, the run record.
    expect(cost.r2.classA).toBe(206 * 30);
    // 3 state reads a run, and one per continuation tick (every 5 minutes).
    expect(cost.r2.classB).toBe(3 * 30 + 8640);
    // 30 runs kept, 30 MB each.
    expect(cost.r2.gbMonth).toBeCloseTo(0.9);
    expect(cost.r2.usdAfterIncluded).toBe(0);
  });
});

describe("npm run cost", () => {
  let dir: string;
  let results: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cost-"));
    results = join(dir, "results.json");
    await writeFile(results, JSON.stringify(RESULTS));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const cost = (...args: string[]) =>
    promisify(execFile)(join(ROOT, "node_modules/.bin/tsx"), ["scripts/cost.ts", ...args], { cwd: ROOT }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );

  it("prints each scenario's and the mix's monthly cost", async () => {
    const { code, stdout } = await cost("--requests-per-month", "20000000", "--mix", "session-read=0.5,session-create=0.5", "--results", results);
    expect(code).toBe(0);
    expect(stdout).toMatch(/session-read\s+20M\s+0\s+0\s+0\s+\$10\.00\s+\$5\.00/);
    expect(stdout).toMatch(/flag-list\s+0\s+0\s+0\s+20M\s+\$100\.00\s+\$95\.00/);
    // A session creation is two writes (the session and its index entry), though these results measured one:
    // 10M reads ($5, all included) and 20M writes ($100, 19M billable after the 1M included).
    expect(stdout).toMatch(/session-create\s+0\s+40M\s+0\s+0\s+\$200\.00\s+\$195\.00/);
    expect(stdout).toMatch(/mix\s+10M\s+20M\s+0\s+0\s+\$105\.00\s+\$95\.00/);
    expect(stdout).toContain("session-create: priced at 2 writes per request as the code makes them; the results measured 1 write");
    // A purge is priced per key: 1M deletes ($5) and one list per 833 keys (1200 lists, $0.006).
    expect(stdout).not.toMatch(/^purge-5000\s/m);
    expect(stdout).toContain("Purging (purge-5000): $5.01 per million keys purged");
    // The dev stack's backups (Pulumi.yaml's default: daily, 30 days), 10k keys by default.
    expect(stdout).toMatch(/^Backups of stack dev \(CONFIG, SESSIONS on "0 3 \* \* \*", kept 30 days\), 10k keys of about 300 B:$/m);
    expect(stdout).toMatch(/30 runs a month, 1 slice each; KV 300k reads \+ 300 lists = \$0\.15;/);
  });

  it("fails with one line when the flags are wrong or there are no results", async () => {
    const missing = await cost("--results", results);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe("cost: give --requests-per-month <number>, e.g. --requests-per-month 10000000");
    const noResults = await cost("--requests-per-month", "1", "--results", join(dir, "none.json"));
    expect(noResults.stderr.trim()).toMatch(/^cost: no benchmark results at .*none\.json; run npm run bench first$/);
    const badMix = await cost("--requests-per-month", "1", "--mix", "flag-eval=0.5", "--results", results);
    expect(badMix.stderr.trim()).toBe("cost: --mix: the shares add up to 0.5, not 1");
  });
});
