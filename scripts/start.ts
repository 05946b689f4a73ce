/**
 * Runs dist/worker.js locally in workerd (through Miniflare) with the three KV
 * namespaces persisted under .data/<stack>/, the stack's vars and its flags
 * declared as code.
 *
 *   npm start [-- --port 8787 --host 127.0.0.1 --stack dev --data-dir <path> --origin-url <url> --ephemeral]
 *
 * Settings: flags > environment (PORT, HOST, ADMIN_TOKEN, ADMIN_TOKENS, ORIGIN_URL) > .dev.vars >
 * Pulumi.<stack>.yaml, read and validated by infra/stack-file.ts exactly as `pulumi up` reads it.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { isAbsolute, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";
import { compatibilityDate as supportedCompatibilityDate } from "workerd";
import { loadStackConfig, workerVars } from "../infra/stack-file";
import { type FlagDefinition, KV_BINDINGS, parseAdminTokens, rateLimitBindings, type RateLimitsSettings, LOCAL_VERSION_METADATA, SECRETS, VARS, VERSION_METADATA_BINDING, encodeEvaluator, encodeFlag, evaluatorKey, flagKey } from "../worker/src/contract";
import { BUNDLE_PATH, ROOT, ensureBuilt, formatKiB } from "./build";
import { CliError, firstSet, isMain, parseFlags, readDevVars, runCommand } from "./lib/cli";
import { localWorker } from "./lib/local-worker";
import { BACKUPS_BINDING } from "../worker/src/backup/format";

export const DEFAULT_STACK = "dev";
/** The Worker's name inside the local workerd (its inspector target is `core:user:<name>`). */
export const LOCAL_WORKER_NAME = "kv-worker-stack";
export const DEFAULT_PORT = 8787;
export const DEFAULT_HOST = "127.0.0.1";

export interface LocalStackOptions {
  /** Whose config to run with; also names the data folder. Default `dev`, reported as ENVIRONMENT=local. */
  stack?: string;
  /** 0 picks a free port. Default 8787. */
  port?: number;
  host?: string;
  /** Default: a random token, logged once. */
  adminToken?: string;
  /** The admin token being rotated out, also accepted; none by default. */
  adminTokenPrevious?: string | undefined;
  /** Named admin tokens with scopes, the JSON of ADMIN_TOKENS (docs/security.md); none by default. */
  adminTokens?: string | undefined;
  /** Default: the stack's origin. */
  originUrl?: string;
  /** Default: .data/<stack>. */
  dataDir?: string;
  /** Keep KV in memory only. */
  ephemeral?: boolean;
  /** Default: the stack's rate limits (`rateLimits` in its config). */
  rateLimits?: RateLimitsSettings;
  log?: (line: string) => void;
  /** Open workerd's inspector on a free port (the soak reads the isolate's heap through it). */
  inspector?: boolean;
  /** Each line workerd logs (console output, runtime warnings); default: printed as Miniflare prints them. */
  onRuntimeLog?: (entry: RuntimeLogEntry) => void;
}

export interface RuntimeLogEntry {
  level: string;
  message: string;
}

export interface LocalStack {
  /** Base URL, without a trailing slash. */
  url: string;
  adminToken: string;
  mf: Miniflare;
  dispose(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  const stack = options.stack ?? DEFAULT_STACK;
  // Pulumi.yaml defaults + Pulumi.<stack>.yaml, validated as `pulumi up` reads them.
  const settings = loadStackConfig(stack);
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  await assertPortFree(host, port);

  log("Checking the Worker bundle (rebuilt when worker/src changed)…");
  const manifest = await ensureBuilt(log);
  log(`bundle: ${relative(ROOT, BUNDLE_PATH)}, ${formatKiB(manifest.bytes)} (${formatKiB(manifest.gzipBytes)} gzip), sha256 ${manifest.sha256}`);

  const dataDir = options.dataDir ?? join(ROOT, ".data", stack);
  log(options.ephemeral ? "data: in memory (--ephemeral), gone when stopped" : `data: ${displayPath(dataDir)} (kept across restarts)`);

  const named = parseAdminTokens(options.adminTokens);
  if ("error" in named) throw new CliError(`${SECRETS.adminTokens} is invalid: ${named.error} (a JSON list of {name, token, scopes}; see docs/security.md)`);
  const generatedToken = options.adminToken === undefined;
  const adminToken = options.adminToken ?? randomBytes(24).toString("base64url");
  const rateLimits = options.rateLimits ?? settings.rateLimits;
  const limiters = rateLimitBindings(rateLimits);
  const vars = {
    ...workerVars({ ...settings, rateLimits }, manifest.sha256),
    ...(options.stack === undefined && { [VARS.environment]: "local" }),
    ...(options.originUrl !== undefined && { [VARS.originUrl]: options.originUrl }),
  };
  const managedFlags = Object.keys(settings.flags);

  const mf = new Miniflare({
    host,
    port,
    // Miniflare keeps each kind of resource in its own folder under this one (.data/<stack>/kv).
    ...(options.ephemeral ? {} : { resourcePersistencePath: dataDir }),
    ...(options.onRuntimeLog ? { handleStructuredLogs: options.onRuntimeLog } : {}),
    ...(options.inspector ? { inspectorPort: 0 } : {}),
    workers: [
      localWorker({
        name: LOCAL_WORKER_NAME,
        scriptPath: BUNDLE_PATH,
        compatibilityDate: localCompatibilityDate(settings.compatibilityDate, log),
        compatibilityFlags: settings.compatibilityFlags,
        kv: Object.fromEntries(KV_BINDINGS.map((binding) => [binding, binding])),
        // Persisted next to KV (.data/<stack>/r2), so a backup outlives the damage it is for.
        r2: { [BACKUPS_BINDING]: settings.backupBucketName },
        text: {
          ...vars,
          [SECRETS.adminToken]: adminToken,
          ...(options.adminTokenPrevious ? { [SECRETS.adminTokenPrevious]: options.adminTokenPrevious } : {}),
          ...(named.tokens.length > 0 && options.adminTokens ? { [SECRETS.adminTokens]: options.adminTokens } : {}),
        },
        // The stack's limits, as Cloudflare enforces them (counters in memory, per run).
        rateLimits: limiters,
        // Cloudflare fills version_metadata per version; locally a fixed stand-in, so /health reports one.
        json: { [VERSION_METADATA_BINDING]: { ...LOCAL_VERSION_METADATA } },
      }),
    ],
  });
  const dispose = () => mf.dispose();
  try {
    const ready = await mf.ready;
    const secrets = [
      SECRETS.adminToken,
      ...(options.adminTokenPrevious ? [SECRETS.adminTokenPrevious] : []),
      ...(named.tokens.length > 0 ? [`${SECRETS.adminTokens} (${named.tokens.map((t) => `${t.name}: ${t.scopes.join(" ")}`).join("; ")})`] : []),
    ];
    log(`stack: ${stack}; KV: ${KV_BINDINGS.join(", ")}; R2: ${BACKUPS_BINDING} (${settings.backupBucketName}); secret${secrets.length > 1 ? "s" : ""}: ${secrets.join(", ")}`);
    log(`vars: ${Object.entries(vars).map(([name, value]) => `${name}=${value}`).join(" ")}`);
    log(`rate limits per client (and per session for refreshes): ${limiters.map((l) => `${l.name} ${l.limit}/${l.period}s`).join(", ")}`);
    if (managedFlags.length > 0) {
      await seedFlags(mf, settings.flags, settings.evaluators);
      log(`flags declared as code, written to CONFIG: ${managedFlags.join(", ")}`);
    }
    if (generatedToken) {
      log(`\nGenerated ${SECRETS.adminToken} (shown only now; set ADMIN_TOKEN or put it in .dev.vars to keep one):\n\n  ${adminToken}\n`);
    }
    return { url: ready.origin, adminToken, mf, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

async function seedFlags(mf: Miniflare, flags: Record<string, FlagDefinition>, evaluators: Record<string, Record<string, unknown>>): Promise<void> {
  const config = await mf.getKVNamespace("CONFIG");
  for (const [name, rule] of Object.entries(evaluators)) {
    const { value, metadata } = encodeEvaluator(rule);
    await config.put(evaluatorKey(name), value, { metadata });
  }
  for (const [name, flag] of Object.entries(flags)) {
    const { value, metadata } = encodeFlag(flag);
    await config.put(flagKey(name), value, { metadata });
  }
}

/** workerd refuses a date newer than its own; fall back, as wrangler dev does, and say so. */
function localCompatibilityDate(wanted: string, log: (line: string) => void): string {
  if (wanted <= supportedCompatibilityDate) return wanted;
  log(`warning: compatibility date ${wanted} is newer than local workerd supports; running with ${supportedCompatibilityDate}`);
  return supportedCompatibilityDate;
}

/** workerd only reports a busy port as a generic startup failure; check first to say which port. */
async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new CliError(`port ${port} on ${host} is already in use; pass --port <n> or set PORT`)
          : error,
      ),
    );
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Command-line flags, then the environment, then .dev.vars; what none of them sets is left to the stack. */
export function cliOptions(
  argv: string[],
  env: Record<string, string | undefined>,
  devVars: Record<string, string>,
): LocalStackOptions {
  const { values } = parseFlags(() => parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      stack: { type: "string" },
      "data-dir": { type: "string" },
      "origin-url": { type: "string" },
      ephemeral: { type: "boolean", default: false },
    },
    strict: true,
  }));
  const setting = (flag: string | undefined, name: string) => firstSet(flag, env[name], devVars[name]);
  const rawPort = setting(values.port, "PORT");
  const port = Number(rawPort ?? DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new CliError(`invalid port ${JSON.stringify(rawPort)}`);
  return {
    port,
    host: setting(values.host, "HOST") ?? DEFAULT_HOST,
    adminToken: firstSet(env[SECRETS.adminToken], devVars[SECRETS.adminToken]),
    adminTokenPrevious: firstSet(env[SECRETS.adminTokenPrevious], devVars[SECRETS.adminTokenPrevious]),
    adminTokens: firstSet(env[SECRETS.adminTokens], devVars[SECRETS.adminTokens]),
    originUrl: setting(values["origin-url"], VARS.originUrl),
    stack: values.stack,
    dataDir: values["data-dir"],
    ephemeral: values.ephemeral,
  };
}

async function main(): Promise<void> {
  const log = (line: string) => console.log(line);
  const options = cliOptions(process.argv.slice(2), process.env, readDevVars());
  const signals = ["SIGINT", "SIGTERM"] as const;
  const before = new Map(signals.map((signal) => [signal, process.listeners(signal)]));
  const stack = await startLocalStack({ ...options, log });

  // Miniflare's exit hook answers SIGINT/SIGTERM by SIGKILLing workerd and
  // calling process.exit(130) in the same tick, so an async dispose() would
  // never finish. Replace its signal listeners with ours; its "exit" listener
  // stays as the last resort that kills workerd.
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130); // second Ctrl-C: don't wait
    stopping = true;
    log(`\n${signal}: stopping workerd…`);
    stack.dispose().then(
      () => {
        log("Stopped.");
        process.exit(0);
      },
      (error: unknown) => {
        console.error(`start: stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.includes(listener)) process.removeListener(signal, listener);
    }
    process.on(signal, stop);
  }

  log(`Local stack ready at ${stack.url}`);
  log(`Try: curl ${stack.url}/health   (Ctrl-C to stop)`);
}

if (isMain(import.meta.url)) runCommand("start", main);

/** Inside the repository a path reads best relative to it; outside, as given. */
function displayPath(path: string): string {
  const inRepo = relative(ROOT, path);
  return inRepo && !inRepo.startsWith("..") && !isAbsolute(inRepo) ? inRepo : path;
}
