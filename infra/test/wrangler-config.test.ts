import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DIST, ROOT, readManifest } from "../../scripts/build";
import { parseOutputs, renderWranglerConfig, wranglerConfig } from "../../scripts/wrangler-config";
import { COMPATIBILITY_DATE } from "../../worker/src/contract";
import { loadStackConfig } from "../stack-file";

const fixture = join(import.meta.dirname, "fixtures/outputs.dev.json");
const PREVIEW_IDS = { SESSIONS: "f1b2c3d4e5f60718293a4b5c6d7e8f90", CACHE: "d1b2c3d4e5f60718293a4b5c6d7e8f90", CONFIG: "e1b2c3d4e5f60718293a4b5c6d7e8f90" };

describe("wrangler config from stack outputs", () => {
  const outputs = parseOutputs(readFileSync(fixture, "utf8"), fixture);
  const stackConfig = loadStackConfig("dev");
  const config = wranglerConfig(stackConfig, outputs);

  it("points every binding at the stack's namespace and its preview namespace", () => {
    expect(config.kv_namespaces).toEqual([
      { binding: "SESSIONS", id: "c1b2c3d4e5f60718293a4b5c6d7e8f90", preview_id: PREVIEW_IDS.SESSIONS },
      { binding: "CACHE", id: "a1b2c3d4e5f60718293a4b5c6d7e8f90", preview_id: PREVIEW_IDS.CACHE },
      { binding: "CONFIG", id: "b1b2c3d4e5f60718293a4b5c6d7e8f90", preview_id: PREVIEW_IDS.CONFIG },
    ]);
  });

  it("names the deployed Worker and carries the stack's compatibility settings and vars, not the secret", () => {
    expect(config).toMatchObject({ name: "kv-worker-stack-dev-worker", main: "dist/worker.js", compatibility_date: COMPATIBILITY_DATE });
    expect(config.vars).toMatchObject({ ENVIRONMENT: "dev", ORIGIN_URL: "https://dummyjson.com", MANAGED_FLAGS: "new-checkout,dark-mode,checkout-banner,$is_gold" });
    expect(config.vars).not.toHaveProperty("ADMIN_TOKEN");
    expect(config.version_metadata).toEqual({ binding: "CF_VERSION_METADATA" });
    expect(config.ratelimits).toContainEqual({ name: "PRODUCT_MISS_LIMITER", namespace_id: "1000", simple: { limit: 600, period: 60 } });
    expect(config.ratelimits.map((r) => r.name)).toEqual(["PRODUCT_MISS_LIMITER", "REFRESH_CLIENT_LIMITER", "REFRESH_SESSION_LIMITER", "FLAG_EVALUATION_LIMITER"]);
    expect(config.r2_buckets).toEqual([{ binding: "BACKUPS", bucket_name: "kv-worker-stack-dev-backups" }]);
    expect(config.triggers).toEqual({ crons: ["0 3 * * *", "*/5 * * * *"] });
  });

  it("runs Worker Previews on the preview namespaces, as ENVIRONMENT=preview, without flags as code", () => {
    expect(config.previews.kv_namespaces).toEqual(Object.entries(PREVIEW_IDS).map(([binding, id]) => ({ binding, id })));
    expect(config.previews.vars).toEqual({ ...config.vars, ENVIRONMENT: "preview", MANAGED_FLAGS: undefined });
    expect(config.previews.vars).not.toHaveProperty("MANAGED_FLAGS");
    expect(config.previews.version_metadata).toEqual(config.version_metadata);
  });

  it("reports the hash of the bundle it ships, and names the account unless it is the placeholder", () => {
    expect(config).not.toHaveProperty("account_id");
    const real = wranglerConfig({ ...stackConfig, accountId: "0123456789abcdef0123456789abcdef" }, outputs, "c".repeat(64));
    expect(real.account_id).toBe("0123456789abcdef0123456789abcdef");
    expect(real.vars.BUNDLE_SHA256).toBe("c".repeat(64));
    expect(real.previews.vars.BUNDLE_SHA256).toBe("c".repeat(64));
  });

  it("writes JSONC that parses back to the same config", () => {
    const text = renderWranglerConfig("dev", config);
    expect(JSON.parse(text.replace(/^\/\/.*$/gm, ""))).toEqual(config);
  });

  it("refuses outputs without the namespace IDs, naming what is missing", () => {
    expect(() => parseOutputs(JSON.stringify({ workerName: "w", bundleSha256: "x" }), "out.json")).toThrow(/out\.json .*namespaceIds/);
  });

  // The real wrangler, offline: it must accept the whole config (previews block
  // included) without a warning and upload exactly the bundle Pulumi deploys.
  it("passes wrangler deploy --dry-run, which would upload dist/worker.js byte for byte", async () => {
    const manifest = await readManifest();
    if (!manifest) throw new Error("no dist/manifest.json: the global setup builds it");
    const dir = await mkdtemp(join(tmpdir(), "wrangler-config-"));
    try {
      // A config beside its own dist/ (a link to the real one), so `main` resolves as in the repository.
      await symlink(DIST, join(dir, "dist"), "dir");
      await writeFile(join(dir, "wrangler.jsonc"), renderWranglerConfig("dev", wranglerConfig(stackConfig, outputs, manifest.sha256)));
      const { stdout, stderr } = await promisify(execFile)(join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", join(dir, "out")], {
        cwd: dir,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_API_TOKEN: "", WRANGLER_LOG_PATH: join(dir, "logs"), NO_COLOR: "1" },
      });
      const output = stdout + stderr;
      expect(output).toContain("--dry-run: exiting now.");
      expect(output).not.toMatch(/WARNING|ERROR|Unexpected fields/);
      expect(output).toContain(`env.BUNDLE_SHA256 ("${manifest.sha256.slice(0, 20)}`);
      const uploaded = await readFile(join(dir, "out", manifest.mainModule));
      expect(createHash("sha256").update(uploaded).digest("hex")).toBe(manifest.sha256);
      expect(uploaded.byteLength).toBe(manifest.bytes);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
