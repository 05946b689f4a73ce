import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BUNDLE_BUDGET, build, OPENAPI_PATH, overBudget } from "../build";
import { assertValidOpenApi, buildOpenApi } from "../../worker/openapi-build";

// Builds into temporary folders: dist/ belongs to the global setup, which other test files read.
const dirs: string[] = [];
async function buildInto() {
  const dir = await mkdtemp(join(tmpdir(), "kv-build-"));
  dirs.push(dir);
  const outfile = join(dir, "worker.js");
  return { outfile, manifest: await build({ outfile }) };
}
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

describe("build", () => {
  it("gives the same bytes, whatever folder it builds into, and records their sha256", async () => {
    const first = await buildInto();
    const second = await buildInto();
    expect(second.manifest.sha256).toBe(first.manifest.sha256);
    const bytes = await readFile(first.outfile);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(first.manifest.sha256);
  });

  it("stays within the bundle budget (176 KiB minified, 48 KiB gzip)", async () => {
    const { manifest } = await buildInto();
    expect(overBudget(manifest)).toBeUndefined();
    expect(manifest.bytes).toBeLessThan(BUNDLE_BUDGET.bytes);
    expect(manifest.gzipBytes).toBeLessThan(BUNDLE_BUDGET.gzipBytes);
  });

  it("names each size that is over the budget", () => {
    expect(overBudget({ bytes: 176 * 1024 + 1, gzipBytes: 1 })).toBe("the bundle is over its budget: 176.0 KiB minified > 176.0 KiB");
    expect(overBudget({ bytes: 1, gzipBytes: 49 * 1024 })).toBe("the bundle is over its budget: 49.0 KiB gzip > 48.0 KiB");
    expect(overBudget({ bytes: 176 * 1024, gzipBytes: 48 * 1024 })).toBeUndefined();
  });

  it("writes dist/openapi.json, the document the bundle embeds", async () => {
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, "../../package.json"), "utf8")) as { version: string };
    expect(await readFile(OPENAPI_PATH, "utf8")).toBe(buildOpenApi(pkg.version).text);
  });

  it("refuses an invalid document, naming the problem", async () => {
    const document = buildOpenApi("0.0.0").document as { paths: Record<string, Record<string, { parameters?: unknown }>> };
    delete document.paths["/sessions/{id}"]!.get!.parameters;
    await expect(assertValidOpenApi(document)).rejects.toThrow(/the OpenAPI document is invalid: .*\bid\b/);
  });
});
