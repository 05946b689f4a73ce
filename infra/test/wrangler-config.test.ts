import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseOutputs, renderWranglerConfig, wranglerConfig } from "../../scripts/wrangler-config";
import { loadStackConfig } from "../stack-file";

const fixture = join(import.meta.dirname, "fixtures/outputs.dev.json");

describe("wrangler config from stack outputs", () => {
  const outputs = parseOutputs(readFileSync(fixture, "utf8"), fixture);
  const config = wranglerConfig(loadStackConfig("dev"), outputs);

  it("points every binding at the stack's namespace and its preview namespace", () => {
    expect(config.kv_namespaces).toEqual([
      { binding: "SESSIONS", id: "c1b2c3d4e5f60718293a4b5c6d7e8f90", preview_id: "f1b2c3d4e5f60718293a4b5c6d7e8f90" },
      { binding: "CACHE", id: "a1b2c3d4e5f60718293a4b5c6d7e8f90", preview_id: "d1b2c3d4e5f60718293a4b5c6d7e8f90" },
      { binding: "CONFIG", id: "b1b2c3d4e5f60718293a4b5c6d7e8f90", preview_id: "e1b2c3d4e5f60718293a4b5c6d7e8f90" },
    ]);
  });

  it("names the deployed Worker and carries the stack's compatibility settings and vars, not the secret", () => {
    expect(config).toMatchObject({ name: "kv-worker-stack-dev-worker", main: "dist/worker.js", compatibility_date: "2026-07-30" });
    expect(config.vars).toMatchObject({ ENVIRONMENT: "dev", ORIGIN_URL: "https://dummyjson.com", MANAGED_FLAGS: "new-checkout,dark-mode" });
    expect(config.vars).not.toHaveProperty("ADMIN_TOKEN");
  });

  it("writes JSONC that parses back to the same config", () => {
    const text = renderWranglerConfig("dev", config);
    expect(JSON.parse(text.replace(/^\/\/.*$/gm, ""))).toEqual(config);
  });

  it("refuses outputs without the namespace IDs, naming what is missing", () => {
    expect(() => parseOutputs(JSON.stringify({ workerName: "w", bundleSha256: "x" }), "out.json")).toThrow(/out\.json .*namespaceIds/);
  });
});
