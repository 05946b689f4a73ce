/**
 * `npm run flags -- import/export` against `npm start`'s local stack, as a
 * user runs them: import(export) is the identity on the flagd testbed's
 * files, and a bad file writes nothing.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalStack, type LocalStack } from "../start";
import { pagesOf } from "../flags";
import { runScript } from "./run-script";

const FLAGS_DIR = join(import.meta.dirname, "fixtures/flagd-testbed/flags");
const files = readdirSync(FLAGS_DIR).map((file) => join(FLAGS_DIR, file));
let stack: LocalStack;
const target = () => ["--url", stack.url, "--admin-token", stack.adminToken];
const exportFlags = async () => {
  const run = await runScript("flags.ts", ["export", ...target()]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { $schema: string; flags: Record<string, unknown>; $evaluators?: Record<string, unknown> };
};

/** What the local stack holds before any import: the dev stack's flags declared as code. */
let baseline: Record<string, unknown>;
let baselineEvaluators: Record<string, unknown>;
beforeAll(async () => {
  stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "flags-cli-test" });
  const before = await exportFlags();
  baseline = before.flags;
  baselineEvaluators = before.$evaluators ?? {};
}, 60_000);
afterAll(() => stack?.dispose());

describe("npm run flags", () => {
  it("refuses a file flagd's schema refuses, naming the file, flag and path, and writes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flags-"));
    const good = join(dir, "good.json");
    const bad = join(dir, "bad.json");
    writeFileSync(good, JSON.stringify({ flags: { fine: { state: "ENABLED", variants: { on: true }, defaultVariant: "on" } } }));
    writeFileSync(bad, JSON.stringify({ flags: { broken: { state: "ENABLED", variants: { on: true }, defaultVariant: "on", targeting: { starts_with: ["x"] } } } }));
    const run = await runScript("flags.ts", ["import", good, bad, ...target()]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${bad}: flags.broken at /targeting/starts_with: must NOT have fewer than 2 items`);
    expect(run.stderr).toContain("nothing was written");
    expect((await exportFlags()).flags).toEqual(baseline);
  });

  it("imports the testbed's files page by page and exports them back as one flagd document (import ∘ export is the identity)", async () => {
    const imported = await runScript("flags.ts", ["import", ...files, ...target(), "--lenient"]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/page 1\/1: 65 flags, 1 evaluators written/);
    const merged = { flags: {} as Record<string, unknown>, $evaluators: {} as Record<string, unknown> };
    for (const file of files) {
      const document = JSON.parse(readFileSync(file, "utf8")) as typeof merged;
      Object.assign(merged.flags, document.flags);
      Object.assign(merged.$evaluators, document.$evaluators ?? {});
    }
    const exported = await exportFlags();
    expect(exported.$schema).toBe("https://flagd.dev/schema/v0/flags.json");
    expect(exported.flags).toEqual({ ...baseline, ...merged.flags });
    expect(exported.$evaluators).toEqual({ ...baselineEvaluators, ...merged.$evaluators });

    // And back: importing the export changes nothing.
    const file = join(mkdtempSync(join(tmpdir(), "flags-")), "export.json");
    writeFileSync(file, JSON.stringify(exported));
    expect((await runScript("flags.ts", ["import", file, ...target(), "--lenient"])).code).toBe(0);
    expect(await exportFlags()).toEqual(exported);
  });

  it("splits a large document into pages under the request limit, evaluators first", () => {
    const flags = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`f${i}`, { state: "ENABLED", variants: { v: "x".repeat(200) }, defaultVariant: "v" }]));
    const pages = pagesOf({ flags, $evaluators: { rule: { "==": [1, 1] } } });
    expect(pages.length).toBeGreaterThan(1);
    expect(Object.keys(pages[0]!.$evaluators)).toEqual(["rule"]);
    for (const page of pages) expect(JSON.stringify(page).length).toBeLessThanOrEqual(16 * 1024);
    expect(pages.reduce((n, page) => n + Object.keys(page.flags).length, 0)).toBe(120);
  });
});
