import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../build";
import { outputPaths } from "../bench";
import { type BenchResults, REPORT_PATH, RESULTS_PATH } from "../lib/bench-report";

// Only checks that the benchmark runs end to end and reports; its figures are not asserted.
describe("npm run bench -- --quick", () => {
  let dir: string;
  let stdout: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bench-"));
    const args = ["scripts/bench.ts", "--quick", "--results", join(dir, "results.json"), "--report", join(dir, "BENCHMARKS.md")];
    ({ stdout } = await promisify(execFile)(join(ROOT, "node_modules/.bin/tsx"), args, { cwd: ROOT, timeout: 150_000 }));
  }, 160_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const SCENARIOS = ["session-read", "session-create", "flag-eval", "flag-eval-rule", "flag-list", "cache-hit", "cache-miss", "purge-1000"];

  it("prints the table with every scenario", () => {
    expect(stdout).toMatch(
      /^scenario\s+req\/s\s+p50 ms\s+p99 ms\s+errors\s+reference req\/s\s+ratio\s+plain req\/s \(app ÷ plain\)\s+CPU µs\/req app \/ ref \/ plain\s+KV r\/w\/d\/l per req\s+targets$/m,
    );
    for (const name of SCENARIOS) expect(stdout).toMatch(new RegExp(`^${name}\\s+\\d+`, "m"));
    expect(stdout).toMatch(/wrote .*results\.json and .*BENCHMARKS\.md/);
  });

  it("writes the results, with KV operations per request, and the Markdown report", async () => {
    const results = JSON.parse(await readFile(join(dir, "results.json"), "utf8")) as BenchResults;
    expect(results.mode).toBe("quick");
    expect(results.scenarios.map((s) => s.name)).toEqual(SCENARIOS);
    for (const s of results.scenarios) {
      expect(s.requestsPerSecond).toBeGreaterThan(0);
      expect(Object.keys(s.kvOpsPerRequest).sort()).toEqual(["delete", "list", "read", "write"]);
    }
    const report = await readFile(join(dir, "BENCHMARKS.md"), "utf8");
    expect(report).toMatch(/^# Benchmarks/);
    expect(report).toContain(results.machine.cpu);
    expect(report).toContain("| flag-eval |");
  });

  it("drives the plain-fetch reference and measures workerd's CPU per request for the read routes", async () => {
    const results = JSON.parse(await readFile(join(dir, "results.json"), "utf8")) as BenchResults;
    for (const name of ["session-read", "flag-eval", "cache-hit"]) {
      const s = results.scenarios.find((r) => r.name === name)!;
      expect(s.plainRequestsPerSecond).toBeGreaterThan(0);
      expect(s.cpuUsPerRequest).toBeGreaterThan(0);
      expect(s.plainCpuUsPerRequest).toBeGreaterThan(0);
    }
  });
});

describe("where a bench run writes", () => {
  it("replaces the committed results and report only on a full run", () => {
    expect(outputPaths({})).toEqual({ resultsPath: RESULTS_PATH, reportPath: REPORT_PATH });
    expect(outputPaths({ quick: true })).toEqual({ resultsPath: undefined, reportPath: undefined });
    expect(outputPaths({ only: ["flag-eval"] })).toEqual({ resultsPath: undefined, reportPath: undefined });
    expect(outputPaths({ quick: true, resultsPath: "/tmp/r.json" })).toEqual({ resultsPath: "/tmp/r.json", reportPath: undefined });
  });
});

describe("npm run bench -- --only", () => {
  const tsx = join(ROOT, "node_modules/.bin/tsx");

  it("refuses an unknown scenario before starting anything", async () => {
    const run = promisify(execFile)(tsx, ["scripts/bench.ts", "--only", "flag-eval,nope"], { cwd: ROOT, timeout: 30_000 });
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^bench: --only: unknown scenario nope; choose from session-read, .*purge\n$/) });
  });

  it("runs only the named scenario and leaves the committed results and report alone", async () => {
    const before = await Promise.all([RESULTS_PATH, REPORT_PATH].map((path) => stat(path).then((s) => s.mtimeMs)));
    const { stdout } = await promisify(execFile)(tsx, ["scripts/bench.ts", "--quick", "--only", "flag-eval"], { cwd: ROOT, timeout: 120_000 });
    expect(stdout).toMatch(/^flag-eval\s+\d+/m);
    expect(stdout).not.toMatch(/^(session-read|cache-hit|purge-\d+)\s/m);
    expect(stdout).toContain("partial run (--only): wrote no files");
    const after = await Promise.all([RESULTS_PATH, REPORT_PATH].map((path) => stat(path).then((s) => s.mtimeMs)));
    expect(after).toEqual(before);
  }, 130_000);
});
