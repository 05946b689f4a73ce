import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadStackConfig } from "../../infra/stack-file";
import type { Manifest } from "../build";
import { CliError } from "../lib/cli";
import { parsePreviewUrl, type PreviewDeps, runPreview, type WranglerRun } from "../preview";
import type { SmokeResult } from "../smoke";
import { parseOutputs, WRANGLER_CONFIG_PATH, wranglerConfig } from "../wrangler-config";

const TOKEN = "preview-admin-token-0123456789abcdef";
const SHA = "ab".repeat(32);
const URL = "https://pr-7-kv-worker-stack-dev-worker.example-team.workers.dev";
const fixture = join(import.meta.dirname, "../../infra/test/fixtures/outputs.dev.json");

/** What `wrangler preview --json` prints (trimmed to the fields that matter). */
const previewJson = (previewUrls: string[], deploymentUrls: string[] = ["https://0a1b2c3d-kv-worker-stack-dev-worker.example-team.workers.dev"]) =>
  JSON.stringify({ preview: { id: "p1", name: "pr-7", slug: "pr-7", urls: previewUrls }, deployment: { id: "d1", urls: deploymentUrls } }, null, 2);

interface Call {
  args: string[];
  env: Record<string, string>;
  secrets?: unknown;
}

function setup(options: { env?: Record<string, string | undefined>; wrangler?: (args: string[]) => WranglerRun; smoke?: SmokeResult[] } = {}) {
  const calls: Call[] = [];
  const lines: string[] = [];
  const smoked: unknown[] = [];
  const deps: PreviewDeps = {
    env: options.env ?? { CLOUDFLARE_API_TOKEN: "cf-token", PREVIEW_ADMIN_TOKEN: TOKEN, ADMIN_TOKEN: "dev-admin-token", PATH: "/usr/bin" },
    wrangler: async (args, env) => {
      const call: Call = { args, env };
      // The secrets file exists only while wrangler runs: read it now.
      const file = args[args.indexOf("--secrets-file") + 1];
      if (args.includes("--secrets-file") && file) call.secrets = JSON.parse(readFileSync(file, "utf8"));
      calls.push(call);
      return options.wrangler?.(args) ?? { code: 0, stdout: previewJson([URL]), stderr: "" };
    },
    writeConfig: async (stack) => wranglerConfig(loadStackConfig(stack), parseOutputs(readFileSync(fixture, "utf8"), fixture), SHA),
    readArtifact: async () => ({ mainModule: "worker.js", sha256: SHA }) as Manifest,
    smoke: async (smokeOptions) => {
      smoked.push(smokeOptions);
      return options.smoke ?? [{ name: "health", status: "pass", detail: "", ms: 5 }];
    },
    log: (line) => lines.push(line),
  };
  return { deps, calls, smoked, output: () => lines.join("\n") };
}

describe("npm run preview", () => {
  it("creates preview pr-<n> with wrangler preview --json and smoke-tests the URL it reports", async () => {
    const { deps, calls, smoked, output } = setup();
    const result = await runPreview({ pr: 7, stack: "dev" }, deps);

    expect(calls).toHaveLength(1);
    const { args } = calls[0]!;
    const secretsFile = args[args.indexOf("--secrets-file") + 1]!;
    expect(args).toEqual([
      "preview", "--config", WRANGLER_CONFIG_PATH, "--name", "pr-7", "--json", "--secrets-file", secretsFile, "--message", `PR #7, bundle ${SHA.slice(0, 12)}`,
    ]);
    expect(smoked).toEqual([{ url: URL, adminToken: TOKEN, expectSha256: SHA }]);
    expect(result).toMatchObject({ preview: "pr-7", workerName: "kv-worker-stack-dev-worker", url: URL, bundleSha256: SHA, smoke: { passed: 1, failed: 0 } });
    expect(output()).toContain(`Preview pr-7: ${URL}`);
    expect(output()).toContain("SESSIONS=f1b2c3d4e5f60718293a4b5c6d7e8f90");
  });

  it("hands wrangler the admin token only in a secrets file, never in argv, its environment or the log", async () => {
    const { deps, calls, output } = setup();
    const result = await runPreview({ pr: 7, stack: "dev" }, deps);
    const call = calls[0]!;
    expect(call.secrets).toEqual({ ADMIN_TOKEN: TOKEN });
    expect(call.args.join(" ")).not.toContain(TOKEN);
    expect(JSON.stringify(call.env)).not.toContain(TOKEN);
    expect(call.env).not.toHaveProperty("ADMIN_TOKEN");
    expect(call.env).toMatchObject({ CLOUDFLARE_API_TOKEN: "cf-token", WRANGLER_SEND_METRICS: "false" });
    expect(output()).not.toContain(TOKEN);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
    expect(existsSync(call.args[call.args.indexOf("--secrets-file") + 1]!)).toBe(false);
  });

  it("generates a token when PREVIEW_ADMIN_TOKEN is not set, and smoke-tests with it", async () => {
    const { deps, calls, smoked, output } = setup({ env: { CLOUDFLARE_API_TOKEN: "cf-token" } });
    await runPreview({ pr: 7, stack: "dev" }, deps);
    const generated = (calls[0]!.secrets as { ADMIN_TOKEN: string }).ADMIN_TOKEN;
    expect(generated).toMatch(/^[0-9a-f]{64}$/);
    expect(smoked).toEqual([expect.objectContaining({ adminToken: generated })]);
    expect(output()).not.toContain(generated);
  });

  it("exits 2 without a Cloudflare token, before calling wrangler", async () => {
    const { deps, calls } = setup({ env: { PREVIEW_ADMIN_TOKEN: TOKEN } });
    const error = await runPreview({ pr: 7, stack: "dev" }, deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({ exitCode: 2, message: expect.stringContaining("CLOUDFLARE_API_TOKEN") });
    const deleting = await runPreview({ pr: 7, stack: "dev", delete: true }, deps).catch((e: unknown) => e);
    expect(deleting).toMatchObject({ exitCode: 2 });
    expect(calls).toEqual([]);
  });

  it("reports a wrangler failure with its message, the token redacted, and runs no smoke test", async () => {
    const stderr = `▲ [WARNING] a warning first\n\x1b[31m✘ [ERROR]\x1b[0m Authentication error [code: 10000] ${TOKEN}\n\n  Check the token.\n\n🪵  Logs were written to "/x.log"\n`;
    const { deps, smoked } = setup({ wrangler: () => ({ code: 1, stdout: "", stderr }) });
    const error = await runPreview({ pr: 7, stack: "dev" }, deps).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(CliError);
    expect((error as Error).message).toBe("wrangler preview --name pr-7 failed (wrangler exit 1): ✘ [ERROR] Authentication error [code: 10000] [redacted]\n  Check the token.");
    expect((error as Error).message).not.toContain(TOKEN);
    expect(smoked).toEqual([]);
  });

  it("deletes preview pr-<n> of the stack's Worker, and treats one already gone as done", async () => {
    const { deps, calls, output } = setup();
    expect(await runPreview({ pr: 7, stack: "dev", delete: true }, deps)).toEqual({ preview: "pr-7", workerName: "kv-worker-stack-dev-worker", deleted: true });
    expect(calls.map((call) => call.args)).toEqual([["preview", "delete", "--name", "pr-7", "--worker-name", "kv-worker-stack-dev-worker", "--skip-confirmation"]]);
    expect(output()).toContain("Deleted preview pr-7 of kv-worker-stack-dev-worker");

    const gone = setup({ wrangler: () => ({ code: 1, stdout: "", stderr: "✘ [ERROR] A request to the Cloudflare API failed. Preview not found [code: 10025]" }) });
    expect(await runPreview({ pr: 7, stack: "dev", delete: true }, gone.deps)).toMatchObject({ deleted: false });
    expect(gone.output()).toContain("already deleted");

    const broken = setup({ wrangler: () => ({ code: 1, stdout: "", stderr: "✘ [ERROR] Authentication error [code: 10000]" }) });
    await expect(runPreview({ pr: 7, stack: "dev", delete: true }, broken.deps)).rejects.toThrow(/Authentication error/);
  });
});

describe("the preview URL from wrangler preview --json", () => {
  it("is the preview's stable URL, after any notice wrangler printed first", () => {
    expect(parsePreviewUrl(`Using git branch "x".\n${previewJson([URL])}\n`)).toBe(URL);
  });

  it("falls back to the deployment URL, and refuses output without any URL or JSON", () => {
    expect(parsePreviewUrl(previewJson([], ["https://d1-w.example.workers.dev"]))).toBe("https://d1-w.example.workers.dev");
    expect(() => parsePreviewUrl(previewJson([], []))).toThrow(/no URL: enable Preview URLs/);
    expect(() => parsePreviewUrl("✘ not json")).toThrow(/did not print JSON/);
    expect(() => parsePreviewUrl(JSON.stringify({ preview: { urls: "x" } }))).toThrow(/unexpected document/);
  });
});
