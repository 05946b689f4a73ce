import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BUNDLE_BUDGET_BYTES, build } from "../build";

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

  it("stays within the bundle budget", async () => {
    const { manifest } = await buildInto();
    expect(manifest.bytes).toBeLessThan(BUNDLE_BUDGET_BYTES);
  });
});
