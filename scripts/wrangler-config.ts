/**
 * Writes wrangler.jsonc (git-ignored) for a deployed stack, so that
 * `wrangler dev --remote`, `wrangler tail`, `wrangler kv key …` and
 * `wrangler preview` work against that stack's real namespaces. wrangler
 * ships dist/worker.js exactly as built (the bytes whose sha256 Pulumi
 * deploys), and Worker Previews run on the stack's preview namespaces.
 *
 *   npm run wrangler-config -- --stack dev                       reads `pulumi stack output`
 *   npm run wrangler-config -- --stack dev --outputs out.json    reads a saved `pulumi stack output --json`
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import * as v from "valibot";
import { PLACEHOLDER_ID, type StackConfig, backupCrons, loadStackConfig, workerVars } from "../infra/stack-file";
import { BACKUPS_BINDING } from "../worker/src/backup/format";
import { KV_BINDINGS, VARS, VERSION_METADATA_BINDING, rateLimitBindings } from "../worker/src/contract";
import { ROOT } from "./build";
import { readArtifact } from "./lib/delivery-artifact";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { EXIT_MISSING_TOOL } from "./lib/pulumi-stack";

export const WRANGLER_CONFIG_PATH = join(ROOT, "wrangler.jsonc");

const NamespaceIds = v.strictObject(Object.fromEntries(KV_BINDINGS.map((b) => [b, v.pipe(v.string(), v.minLength(1))])));
/** The stack outputs this command needs (names as infra/index.ts exports them). */
const Outputs = v.object({
  workerName: v.string(),
  bundleSha256: v.string(),
  namespaceIds: NamespaceIds,
  previewNamespaceIds: NamespaceIds,
});
export type Outputs = v.InferOutput<typeof Outputs>;

export function parseOutputs(json: string, source: string): Outputs {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new CliError(`${source} is not JSON (expected \`pulumi stack output --json\`)`);
  }
  const parsed = v.safeParse(Outputs, raw);
  if (!parsed.success) {
    throw new CliError(`${source} is missing stack outputs: ${parsed.issues.map((i) => v.getDotPath(i) ?? i.message).join(", ")}`);
  }
  return parsed.output as Outputs;
}

/** What `ENVIRONMENT` says in a Worker Preview. */
export const PREVIEW_ENVIRONMENT = "preview";

/**
 * The wrangler config for a stack: its deployed names and IDs, its
 * compatibility settings and vars, and the `previews` block `wrangler preview`
 * uses. `bundleSha256` is the hash of the dist/worker.js this config ships
 * (what /health reports); it defaults to the deployed one.
 */
export function wranglerConfig(config: StackConfig, outputs: Outputs, bundleSha256 = outputs.bundleSha256) {
  const vars = workerVars(config, bundleSha256);
  // Flags as code are seeded into the stack's CONFIG namespace only, so a preview has none to protect.
  const previewVars: Record<string, string> = { ...vars, [VARS.environment]: PREVIEW_ENVIRONMENT };
  delete previewVars[VARS.managedFlags];
  return {
    name: outputs.workerName,
    // wrangler would otherwise ask the API which account to use (or prompt); the placeholder is no account.
    ...(config.accountId === PLACEHOLDER_ID ? {} : { account_id: config.accountId }),
    main: "dist/worker.js",
    // Ship the build byte for byte: wrangler's own esbuild pass would add its
    // shims (64 KiB instead of 45) and upload a bundle whose hash no one checked.
    no_bundle: true,
    // …and only that file: dist/ also holds the source map and the manifest.
    find_additional_modules: false,
    compatibility_date: config.compatibilityDate,
    compatibility_flags: [...config.compatibilityFlags],
    kv_namespaces: KV_BINDINGS.map((binding) => ({
      binding,
      id: outputs.namespaceIds[binding],
      preview_id: outputs.previewNamespaceIds[binding],
    })),
    // The backups bucket and crons, as the Pulumi program makes them; previews get neither (a preview never backs up).
    r2_buckets: [{ binding: BACKUPS_BINDING, bucket_name: config.backupBucketName }],
    triggers: { crons: backupCrons(config) },
    vars,
    version_metadata: { binding: VERSION_METADATA_BINDING },
    // The stack's Workers Rate Limiting bindings, as the Pulumi program provisions them.
    ratelimits: rateLimitBindings(config.rateLimits).map(({ name, namespaceId, limit, period }) => ({ name, namespace_id: namespaceId, simple: { limit, period } })),
    observability: { enabled: true },
    // Worker Previews inherit none of the above bindings: a preview gets the
    // stack's preview namespaces, never dev's or prod's data.
    previews: {
      kv_namespaces: KV_BINDINGS.map((binding) => ({ binding, id: outputs.previewNamespaceIds[binding] })),
      vars: previewVars,
      version_metadata: { binding: VERSION_METADATA_BINDING },
      // Logs of a reviewer's requests, as for the deployed Worker.
      observability: { enabled: true },
    },
  };
}
export type WranglerConfig = ReturnType<typeof wranglerConfig>;

export function renderWranglerConfig(stack: string, config: WranglerConfig): string {
  return `// Generated by \`npm run wrangler-config -- --stack ${stack}\` from the stack's outputs; do not edit.
// ADMIN_TOKEN is a secret: put it in .dev.vars for \`wrangler dev\`.
${JSON.stringify(config, null, 2)}
`;
}

export async function stackOutputsFromCli(stack: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)("pulumi", ["stack", "output", "--json", "--show-secrets=false", "--stack", stack], {
      cwd: ROOT,
      env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" },
    });
    return stdout;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new CliError(
        `the Pulumi CLI is not installed; pass the outputs from a machine that has it: --outputs <file> (from \`pulumi stack output --json --stack ${stack}\`)`,
        EXIT_MISSING_TOOL,
      );
    }
    throw new CliError(`pulumi stack output failed for stack ${stack}: ${(error as { stderr?: string }).stderr?.trim() || String(error)}`);
  }
}

export function readOutputsFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/**
 * Reads the stack's outputs (from `pulumi stack output`, or a saved copy) and
 * writes wrangler.jsonc for them and for the bundle in dist/, when there is one.
 */
export async function writeWranglerConfig(stack: string, outputsFile: string | undefined, log: (line: string) => void): Promise<WranglerConfig> {
  const config = loadStackConfig(stack);
  log(outputsFile ? `reading outputs of stack ${stack} from ${outputsFile}` : `reading outputs of stack ${stack} with pulumi stack output`);
  const json = outputsFile ? readOutputsFile(outputsFile) : await stackOutputsFromCli(stack);
  const outputs = parseOutputs(json, outputsFile ?? `pulumi stack output --stack ${stack}`);
  const built = await readArtifact();
  if (built && built.sha256 !== outputs.bundleSha256) log(`dist/worker.js (sha256 ${built.sha256}) is not the bundle ${stack} runs (${outputs.bundleSha256})`);
  const wrangler = wranglerConfig(config, outputs, built?.sha256);
  writeFileSync(WRANGLER_CONFIG_PATH, renderWranglerConfig(stack, wrangler));
  log(`wrote wrangler.jsonc for ${wrangler.name}: ${wrangler.kv_namespaces.map((ns) => `${ns.binding}=${ns.id} (preview ${ns.preview_id})`).join(", ")}`);
  return wrangler;
}

async function main() {
  const { values } = parseFlags(() => parseArgs({ options: { stack: { type: "string", default: "dev" }, outputs: { type: "string" } } }));
  await writeWranglerConfig(values.stack, values.outputs, (line) => console.log(line));
}

if (isMain(import.meta.url)) runCommand("wrangler-config", main);
