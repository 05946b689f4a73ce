/**
 * A live Worker Preview of a pull request: `wrangler preview` uploads dist/worker.js
 * as a named, isolated copy of a stack's Worker (its own URL, bound to the stack's
 * preview namespaces, see wrangler-config.ts), then the smoke test runs against it.
 *
 *   npm run preview -- --pr <n> [--stack dev] [--outputs <file>] [--result <file>]
 *   npm run preview -- --pr <n> [--stack dev] --delete
 *
 * Needs CLOUDFLARE_API_TOKEN. The preview's admin token is PREVIEW_ADMIN_TOKEN
 * when set, else a fresh random one; it reaches wrangler only inside a secrets
 * file readable by this user alone, never in argv or in anything printed.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { PLACEHOLDER_ID, loadStackConfig } from "../infra/stack-file";
import { SECRETS } from "../worker/src/contract";
import { type Manifest, ROOT } from "./build";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { requireArtifact } from "./lib/delivery-artifact";
import { EXIT_MISSING_TOOL } from "./lib/pulumi-stack";
import { runSmoke, summarize, type SmokeOptions, type SmokeResult } from "./smoke";
import { WRANGLER_CONFIG_PATH, type WranglerConfig, writeWranglerConfig } from "./wrangler-config";

export const PREVIEW_TOKEN_ENV = "PREVIEW_ADMIN_TOKEN";
const WRANGLER_BIN = join(ROOT, "node_modules/.bin/wrangler");

export interface WranglerRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PreviewDeps {
  /** The environment the tokens come from (process.env in the command). */
  env: Record<string, string | undefined>;
  /** Runs the repository's wrangler; `env` is its whole environment. */
  wrangler: (args: string[], env: Record<string, string>) => Promise<WranglerRun>;
  /** Writes wrangler.jsonc for the stack (its outputs, the bundle in dist/) and returns it. */
  writeConfig: (stack: string) => Promise<WranglerConfig>;
  readArtifact: () => Promise<Manifest>;
  smoke: (options: Pick<SmokeOptions, "url" | "adminToken" | "expectSha256">) => Promise<SmokeResult[]>;
  log: (line: string) => void;
}

export interface PreviewOptions {
  pr: number;
  stack: string;
  delete?: boolean;
}

export interface PreviewResult {
  preview: string;
  workerName: string;
  url?: string;
  bundleSha256?: string;
  smoke?: ReturnType<typeof summarize> & { checks: SmokeResult[] };
  deleted?: boolean;
}

export const previewName = (pr: number) => `pr-${pr}`;

/** The part of `wrangler preview --json` this command reads: `{preview: {urls}, deployment: {urls}}`. */
const PreviewJson = v.object({
  preview: v.object({ name: v.optional(v.string()), urls: v.optional(v.array(v.string()), []) }),
  deployment: v.object({ id: v.optional(v.string()), urls: v.optional(v.array(v.string()), []) }),
});

/**
 * The preview's stable URL (`<preview>-<worker>.<subdomain>.workers.dev`) from
 * wrangler's --json output, falling back to the deployment's own URL.
 */
export function parsePreviewUrl(stdout: string): string {
  // With --json wrangler prints one JSON document; anything before it (a notice) is skipped.
  const start = stdout.search(/^\{/m);
  let raw: unknown;
  try {
    raw = JSON.parse(start < 0 ? stdout : stdout.slice(start));
  } catch {
    throw new CliError(`wrangler preview --json did not print JSON: ${stdout.trim().slice(0, 300) || "(nothing)"}`);
  }
  const parsed = v.safeParse(PreviewJson, raw);
  if (!parsed.success) throw new CliError(`wrangler preview --json printed an unexpected document: ${v.summarize(parsed.issues)}`);
  const url = parsed.output.preview.urls[0] ?? parsed.output.deployment.urls[0];
  if (!url) {
    throw new CliError("the preview was created but has no URL: enable Preview URLs on the Worker's workers.dev subdomain (Settings › Domains & Routes)");
  }
  return url;
}

/** The environment wrangler runs with: ours, minus every admin token, so nothing can pick one up from it. */
function wranglerEnv(env: Record<string, string | undefined>, config: { accountId: string }): Record<string, string> {
  const clean = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[0] !== SECRETS.adminToken && entry[0] !== PREVIEW_TOKEN_ENV),
  );
  return {
    ...clean,
    WRANGLER_SEND_METRICS: "false",
    ...(config.accountId === PLACEHOLDER_ID ? {} : { CLOUDFLARE_ACCOUNT_ID: config.accountId }),
  };
}

/** wrangler's error: the `✘ [ERROR]` line and its explanation, without colours, blank lines or the log-file pointer. */
export function wranglerError(run: WranglerRun): string {
  const lines = `${run.stderr}\n${run.stdout}`
    .replace(/\x1b\[[0-9;]*m/g, "")
    .split("\n")
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== "" && !line.includes("Logs were written to"));
  const start = Math.max(0, lines.findIndex((line) => line.includes("[ERROR]")));
  return lines.slice(start, start + 10).join("\n") || "no output";
}

export async function runPreview(options: PreviewOptions, deps: PreviewDeps): Promise<PreviewResult> {
  const { log } = deps;
  const name = previewName(options.pr);
  if (!deps.env.CLOUDFLARE_API_TOKEN) {
    throw new CliError(
      "no Cloudflare API token: set CLOUDFLARE_API_TOKEN (Account › Workers Scripts: Edit and Workers KV Storage: Edit) and run this again",
      EXIT_MISSING_TOOL,
    );
  }
  const stackConfig = loadStackConfig(options.stack);
  const env = wranglerEnv(deps.env, stackConfig);
  // wrangler's own messages: the token is not among them, but nothing it prints leaves unredacted.
  const adminToken = deps.env[PREVIEW_TOKEN_ENV] || randomBytes(32).toString("hex");
  const redact = (text: string) => text.split(adminToken).join("[redacted]");
  const failed = (what: string, run: WranglerRun) => new CliError(`${what} failed (wrangler exit ${run.code}): ${redact(wranglerError(run))}`);

  if (options.delete) {
    const workerName = stackConfig.workerName;
    log(`Deleting preview ${name} of ${workerName}…`);
    const run = await deps.wrangler(["preview", "delete", "--name", name, "--worker-name", workerName, "--skip-confirmation"], env);
    const output = `${run.stdout}\n${run.stderr}`;
    if (run.code !== 0 && !/not (?:be )?found|does not exist/i.test(output)) throw failed(`wrangler preview delete --name ${name}`, run);
    log(run.code === 0 ? `Deleted preview ${name} of ${workerName}` : `Preview ${name} of ${workerName} does not exist (already deleted)`);
    return { preview: name, workerName, deleted: run.code === 0 };
  }

  const manifest = await deps.readArtifact();
  const config = await deps.writeConfig(options.stack);
  log(`Creating or updating preview ${name} of ${config.name}: bundle dist/${manifest.mainModule} sha256 ${manifest.sha256}`);
  log(`  bindings: ${config.previews.kv_namespaces.map((ns) => `${ns.binding}=${ns.id}`).join(", ")} (the stack's preview namespaces)`);
  log(`  admin token: ${deps.env[PREVIEW_TOKEN_ENV] ? `from ${PREVIEW_TOKEN_ENV}` : `generated for this run (not shown; set ${PREVIEW_TOKEN_ENV} to choose one)`}`);

  const dir = await mkdtemp(join(tmpdir(), "kv-preview-"));
  let run: WranglerRun;
  try {
    const secretsFile = join(dir, "secrets.json");
    // JSON, not dotenv: wrangler expands $VAR in a dotenv secrets file.
    await writeFile(secretsFile, JSON.stringify({ [SECRETS.adminToken]: adminToken }), { mode: 0o600 });
    run = await deps.wrangler(
      ["preview", "--config", WRANGLER_CONFIG_PATH, "--name", name, "--json", "--secrets-file", secretsFile, "--message", `PR #${options.pr}, bundle ${manifest.sha256.slice(0, 12)}`],
      env,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (run.code !== 0) throw failed(`wrangler preview --name ${name}`, run);
  const url = parsePreviewUrl(run.stdout);
  log(`Preview ${name}: ${url}`);

  log(`Smoke test of ${url}`);
  const checks = await deps.smoke({ url, adminToken, expectSha256: manifest.sha256 });
  const counts = summarize(checks);
  const result: PreviewResult = { preview: name, workerName: config.name, url, bundleSha256: manifest.sha256, smoke: { ...counts, checks } };
  log(`\nPreview ${name} of ${config.name}`);
  log(`  url         ${url}`);
  log(`  bundle      sha256 ${manifest.sha256}`);
  log(`  smoke       ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  return result;
}

/** Runs the repository's wrangler, its stdout captured (the --json document) and stderr kept for errors. */
function runWrangler(args: string[], env: Record<string, string>): Promise<WranglerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(WRANGLER_BIN, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "ENOENT" ? new CliError("wrangler is not installed: run `npm ci`", EXIT_MISSING_TOOL) : error),
    );
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: {
        pr: { type: "string" },
        stack: { type: "string", default: "dev" },
        delete: { type: "boolean", default: false },
        outputs: { type: "string" },
        result: { type: "string" },
      },
    }),
  );
  const usage = "usage: npm run preview -- --pr <n> [--stack dev] [--outputs <file>] [--result <file>] [--delete]";
  if (!values.pr || !/^[1-9]\d{0,9}$/.test(values.pr)) throw new CliError(values.pr ? `--pr ${values.pr} is not a pull request number; ${usage}` : usage);
  const log = (line: string) => console.log(line);
  const result = await runPreview(
    { pr: Number(values.pr), stack: values.stack, delete: values.delete },
    {
      env: process.env,
      wrangler: runWrangler,
      writeConfig: (stack) => writeWranglerConfig(stack, values.outputs, log),
      readArtifact: requireArtifact,
      smoke: (options) => runSmoke({ ...options, log }),
      log,
    },
  );
  // For the PR comment: URL, hash and every smoke check, without the token.
  if (values.result) await writeFile(values.result, `${JSON.stringify(result, null, 2)}\n`);
  if (result.smoke && result.smoke.failed > 0) throw new CliError(`preview ${result.preview} is up at ${result.url}, but ${result.smoke.failed} smoke check(s) failed`);
}

if (isMain(import.meta.url)) runCommand("preview", main);
