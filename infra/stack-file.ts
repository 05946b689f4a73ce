/**
 * A stack's configuration, parsed and validated without the Pulumi runtime, so
 * that the Pulumi program (infra/config.ts), the offline plan and the local
 * runner (`npm start -- --stack prod`) all accept and refuse exactly the same
 * config.
 *
 * `parseStackConfig` takes values as Pulumi hands them to a program (strings,
 * structured values as JSON) or as YAML parses them (native types).
 * `loadStackConfig` reads Pulumi.yaml's defaults and Pulumi.<stack>.yaml.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as v from "valibot";
import { parse as parseYaml } from "yaml";
import { parseRollout, type Rollout } from "./rollout";
import { definitionsOf, type FlagDocument, validateDocument } from "../worker/src/flags";
import { BackupsConfig, DEFAULT_BACKUPS } from "../worker/src/backup/config";
import { BACKUP_VARS, CONTINUE_CRON } from "../worker/src/backup/format";
import {
  CACHE_TTL,
  COMPATIBILITY_DATE,
  COMPATIBILITY_FLAGS,
  FLAG_NAME_PATTERN,
  Flag,
  type FlagDefinition,
  KV_BINDINGS,
  type KvBinding,
  RATE_LIMIT_DEFAULTS,
  RATE_LIMIT_NAMES,
  RATE_LIMIT_PERIODS,
  type RateLimitsSettings,
  SESSION_MAX_LIFETIME,
  SESSION_TTL,
  VARS,
  describeIssues,
} from "../worker/src/contract";

export const PROJECT = "kv-worker-stack";
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The stack files ship with this all-zero ID in place of real Cloudflare IDs,
 * so that plans run on a fresh clone; a real deployment refuses it.
 */
export const PLACEHOLDER_ID = "0".repeat(32);

export interface StackConfig {
  project: string;
  stack: string;
  /** Reported by the Worker as ENVIRONMENT; the stack's name. */
  environment: string;
  accountId: string;
  zoneId: string | undefined;
  zoneName: string | undefined;
  workerName: string;
  routes: string[];
  customDomains: string[];
  workersDev: boolean;
  workersDevSubdomain: string | undefined;
  originUrl: string;
  compatibilityDate: string;
  compatibilityFlags: readonly string[];
  sessionTtlSeconds: number;
  /** No session outlives createdAt + this, however often it is refreshed. */
  sessionMaxLifetimeSeconds: number;
  cacheTtlSeconds: number;
  /** Protect and retain the KV namespaces: no destroy, rename or replacement deletes data. */
  protect: boolean;
  /** Feature flags declared as code, by name: flagd definitions or the shorthand (`flags`, and `flagsFile`'s). */
  flags: Record<string, FlagDefinition>;
  /** Shared targeting rules (flagd's `$evaluators`) the flags refer to with `{"$ref": name}`. */
  evaluators: Record<string, Record<string, unknown>>;
  /** How traffic splits between the version this update uploads and the stable one. */
  rollout: Rollout;
  /** Scheduled backups of KV to R2: schedule, retention, namespaces, bucket lock. */
  backups: BackupsConfig;
  /** The backups bucket's physical name. */
  backupBucketName: string;
  /** Physical names of the KV namespaces, built here and nowhere else. */
  namespaceTitles: Record<KvBinding, { title: string; previewTitle: string }>;
  /** Existing namespaces (from a wrangler deployment) the program imports instead of creating, by binding. */
  adoptedNamespaces: Partial<Record<KvBinding, AdoptedNamespace>>;
  /** The Workers Rate Limiting bindings' namespace ids and limits, defaults filled in. */
  rateLimits: RateLimitsSettings;
}

/**
 * A namespace that already exists (made by `wrangler kv namespace create`),
 * imported with its current title. Without a title the program keeps
 * whatever title it has (ignoreChanges), since wrangler's config never
 * records titles.
 */
export interface AdoptedNamespace {
  id: string;
  title?: string;
  previewId?: string;
  previewTitle?: string;
}

/** A config value the program refuses; names the stack and the key. */
export class ConfigError extends Error {
  constructor(
    readonly stackName: string,
    readonly key: string | undefined,
    detail: string,
  ) {
    super(
      key === undefined
        ? `stack "${stackName}": ${detail}`
        : `stack "${stackName}", config key "${PROJECT}:${key}": ${detail}`,
    );
    this.name = "ConfigError";
  }
}

/** `<project>-<stack>-<logical>`, lower-case: the one place physical names come from. */
export const physicalName = (project: string, stack: string, logical: string) =>
  `${project}-${stack}-${logical}`.toLowerCase();

/** Every key the program reads, besides the secrets (SECRET_KEYS). Pulumi.yaml declares each of them. */
export const CONFIG_KEYS = [
  "accountId",
  "zoneId",
  "zoneName",
  "workerName",
  "routes",
  "customDomains",
  "workersDev",
  "workersDevSubdomain",
  "originUrl",
  "compatibilityDate",
  "compatibilityFlags",
  "sessionTtlSeconds",
  "sessionMaxLifetimeSeconds",
  "cacheTtlSeconds",
  "protect",
  "flags",
  "flagsFile",
  "rollout",
  "adoptedNamespaces",
  "rateLimits",
  "backups",
] as const;
export const SECRET_KEYS = ["adminToken", "adminTokenPrevious", "adminTokens"] as const;

export const HEX_ID = /^[0-9a-f]{32}$/;
const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})+$`);
const SCRIPT_NAME = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;
const COMPATIBILITY_FLAG = /^[a-z0-9_]+$/;

export interface ParseOptions {
  /** Refuse the placeholder IDs (a real `pulumi up`/`preview`, not a plan). */
  deploying?: boolean;
  /** The repository root `flagsFile` is relative to. */
  root?: string;
}

export function parseStackConfig(stack: string, raw: Record<string, unknown>, options: ParseOptions = {}): StackConfig {
  const fail = (key: string, detail: string): never => {
    throw new ConfigError(stack, key, detail);
  };
  for (const key of Object.keys(raw)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key) && !(SECRET_KEYS as readonly string[]).includes(key)) {
      fail(key, `unknown key; the known keys are ${CONFIG_KEYS.join(", ")}`);
    }
  }
  const read = new Reader(stack, raw);

  const accountId = read.string("accountId", { required: true });
  if (!HEX_ID.test(accountId)) fail("accountId", "must be the 32-character hex Cloudflare account ID");
  const zoneId = read.string("zoneId") || undefined;
  if (zoneId !== undefined && !HEX_ID.test(zoneId)) fail("zoneId", "must be the 32-character hex Cloudflare zone ID");
  if (options.deploying) {
    for (const [key, value] of [["accountId", accountId], ["zoneId", zoneId]] as const) {
      if (value === PLACEHOLDER_ID) {
        fail(key, `is still the placeholder; set it with \`pulumi config set ${key} <id> --stack ${stack}\``);
      }
    }
  }
  const zoneName = read.string("zoneName").toLowerCase() || undefined;
  if (zoneName !== undefined && !HOSTNAME.test(zoneName)) fail("zoneName", `"${zoneName}" is not a valid zone name`);

  const inZone = (host: string) => zoneName !== undefined && (host === zoneName || host.endsWith(`.${zoneName}`));
  const routes = read.strings("routes");
  routes.forEach((pattern, i) => {
    const key = `routes[${i}]`;
    if (pattern.includes("://")) fail(key, `"${pattern}" must not include a scheme (write host/path, e.g. api.example.com/*)`);
    const slash = pattern.indexOf("/");
    if (slash < 0) fail(key, `"${pattern}" needs a path (e.g. ${pattern}/*)`);
    const host = pattern.slice(0, slash).replace(/^\*\.?/, "");
    if (!HOSTNAME.test(host)) fail(key, `"${pattern}" does not start with a valid hostname`);
    if (!inZone(host)) fail(key, `"${pattern}" is outside the zone ${zoneName ? `"${zoneName}"` : "(zoneName is not set)"}`);
  });
  if (routes.length > 0 && zoneId === undefined) fail("zoneId", "is required when routes are configured");

  const customDomains = read.strings("customDomains").map((host) => host.toLowerCase());
  customDomains.forEach((host, i) => {
    const key = `customDomains[${i}]`;
    if (!HOSTNAME.test(host)) fail(key, `"${host}" is not a valid hostname (no scheme, path or wildcard)`);
    if (!inZone(host)) fail(key, `"${host}" is outside the zone ${zoneName ? `"${zoneName}"` : "(zoneName is not set)"}`);
  });
  if (new Set(customDomains).size !== customDomains.length) fail("customDomains", "lists a hostname twice");
  if (new Set(routes).size !== routes.length) fail("routes", "lists a pattern twice");

  const workerName = read.string("workerName") || physicalName(PROJECT, stack, "worker");
  if (!SCRIPT_NAME.test(workerName)) fail("workerName", `"${workerName}" must be lower-case letters, digits, - or _ (at most 63)`);
  const workersDev = read.boolean("workersDev", true);
  const workersDevSubdomain = read.string("workersDevSubdomain").toLowerCase() || undefined;
  if (workersDevSubdomain !== undefined && !new RegExp(`^${LABEL}$`).test(workersDevSubdomain)) {
    fail("workersDevSubdomain", `"${workersDevSubdomain}" must be the account's workers.dev subdomain (one DNS label)`);
  }

  const originUrl = read.string("originUrl", { required: true });
  if (!URL.canParse(originUrl) || new URL(originUrl).protocol !== "https:") fail("originUrl", `"${originUrl}" must be an https:// URL`);

  const compatibilityDate = read.string("compatibilityDate") || COMPATIBILITY_DATE;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(compatibilityDate) || Number.isNaN(Date.parse(compatibilityDate))) {
    fail("compatibilityDate", `"${compatibilityDate}" must be a date, YYYY-MM-DD`);
  }
  const flagsList = read.strings("compatibilityFlags");
  const compatibilityFlags = flagsList.length > 0 ? flagsList : COMPATIBILITY_FLAGS;
  compatibilityFlags.forEach((flag, i) => {
    if (!COMPATIBILITY_FLAG.test(flag)) fail(`compatibilityFlags[${i}]`, `"${flag}" is not a compatibility flag`);
  });

  const sessionTtlSeconds = read.integer("sessionTtlSeconds", SESSION_TTL);
  const sessionMaxLifetimeSeconds = read.integer("sessionMaxLifetimeSeconds", SESSION_MAX_LIFETIME);
  if (sessionMaxLifetimeSeconds < sessionTtlSeconds) {
    fail("sessionMaxLifetimeSeconds", `${sessionMaxLifetimeSeconds} is shorter than sessionTtlSeconds (${sessionTtlSeconds}): every session would be cut short`);
  }
  const cacheTtlSeconds = read.integer("cacheTtlSeconds", CACHE_TTL);
  const protect = read.boolean("protect", false);

  const { flags, evaluators } = parseFlags(stack, read.object("flags"), read.string("flagsFile"), options.root ?? ROOT, fail);

  const rollout = parseRollout(read.object("rollout"), fail);

  const reachable = customDomains.length > 0 || (workersDev && workersDevSubdomain) || routes.some((r) => !r.startsWith("*"));
  if (!reachable) {
    fail("customDomains", "the Worker would have no URL: set customDomains, a route without a wildcard host, or workersDev with workersDevSubdomain");
  }

  const adoptedNamespaces = parseAdopted(read.object("adoptedNamespaces"), fail);
  const rateLimits = parseRateLimits(read.object("rateLimits"), fail);
  // Pulumi.yaml's default (DEFAULT_BACKUPS, a test keeps them equal) when the key is absent, as the CLI merges it.
  const backups = raw.backups === undefined ? DEFAULT_BACKUPS : parseBackups(read.object("backups"), fail);

  const namespaceTitles = Object.fromEntries(
    KV_BINDINGS.map((binding) => {
      const title = physicalName(PROJECT, stack, binding);
      return [binding, { title, previewTitle: `${title}-preview` }];
    }),
  ) as StackConfig["namespaceTitles"];

  return {
    project: PROJECT,
    stack,
    environment: stack,
    accountId,
    zoneId,
    zoneName,
    workerName,
    routes,
    customDomains,
    workersDev,
    workersDevSubdomain,
    originUrl,
    compatibilityDate,
    compatibilityFlags,
    sessionTtlSeconds,
    sessionMaxLifetimeSeconds,
    cacheTtlSeconds,
    protect,
    flags,
    evaluators,
    rollout,
    backups,
    backupBucketName: physicalName(PROJECT, stack, "backups"),
    namespaceTitles,
    adoptedNamespaces,
    rateLimits,
  };
}

/**
 * `flags` (a map of name to flagd definition or shorthand, plus an optional
 * `$evaluators` map) merged with `flagsFile` (a flagd JSON file in the
 * repository), every definition checked with flagd's schema: an error names
 * the stack, the flag and the path in it.
 */
function parseFlags(
  stack: string,
  inline: Record<string, unknown>,
  flagsFile: string,
  root: string,
  fail: (key: string, detail: string) => never,
): { flags: Record<string, FlagDefinition>; evaluators: Record<string, Record<string, unknown>> } {
  const { $evaluators: inlineEvaluators = {}, ...inlineFlags } = inline;
  // The shorthand keeps its own messages, as before flagd definitions were accepted.
  for (const [name, value] of Object.entries(inlineFlags)) {
    if (!FLAG_NAME_PATTERN.test(name)) fail(`flags.${name}`, `"${name}" is not a valid flag name`);
    if (typeof value === "object" && value !== null && !("state" in value)) {
      const parsed = v.safeParse(Flag, value);
      if (!parsed.success) {
        const issue = parsed.issues[0];
        const path = v.getDotPath(issue);
        fail(path ? `flags.${name}.${path}` : `flags.${name}`, describeIssues([issue]));
      }
    }
  }
  const documents: [string, Record<string, unknown>][] = [["flags", { flags: inlineFlags, $evaluators: inlineEvaluators }]];
  if (flagsFile) {
    const path = resolve(root, flagsFile);
    if (!path.startsWith(`${resolve(root)}/`)) fail("flagsFile", `"${flagsFile}" must be a file inside the repository`);
    let document: unknown;
    try {
      document = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      fail("flagsFile", `cannot read "${flagsFile}" as JSON: ${(error as Error).message}`);
    }
    documents.push([`flagsFile ${flagsFile}`, document as Record<string, unknown>]);
  }
  const flags: Record<string, FlagDefinition> = {};
  const evaluators: Record<string, Record<string, unknown>> = {};
  for (const [source, document] of documents) {
    const { errors } = validateDocument(document);
    const first = errors[0];
    if (first) {
      const key = source === "flags" ? (first.where.startsWith("flags.") ? first.where : first.where === "" ? "flags" : `flags.${first.where}`) : "flagsFile";
      fail(key, `${source === "flags" ? "" : `${flagsFile}: ${first.where} `}${first.path ? `at ${first.path}: ` : ""}${first.message}`);
    }
    for (const [name, flag] of Object.entries(definitionsOf(document as unknown as FlagDocument))) {
      if (name in flags) fail("flagsFile", `flag ${name} is declared both in flags and in ${flagsFile}`);
      flags[name] = flag;
    }
    for (const [name, rule] of Object.entries((document.$evaluators ?? {}) as Record<string, Record<string, unknown>>)) {
      if (name in evaluators) fail("flagsFile", `evaluator ${name} is declared both in flags.$evaluators and in ${flagsFile}`);
      evaluators[name] = rule;
    }
  }
  return { flags, evaluators };
}

/** `backups`, checked with the Worker's own schema; each issue names its field. */
function parseBackups(raw: Record<string, unknown>, fail: (key: string, detail: string) => never): BackupsConfig {
  const parsed = v.safeParse(BackupsConfig, raw);
  if (!parsed.success) {
    const [issue] = parsed.issues;
    const path = v.getDotPath(issue);
    const detail =
      issue.expected === "never"
        ? `unknown key; the keys are ${Object.keys(BackupsConfig.entries).join(", ")}`
        : issue.received === "undefined"
          ? "is required"
          : issue.message;
    fail(path ? `backups.${path}` : "backups", detail);
  }
  return parsed.output as BackupsConfig;
}

/** The Worker's cron triggers: the backup schedule, and the continuation of a run larger than one invocation. */
export const backupCrons = (config: StackConfig) => (config.backups.namespaces.length === 0 ? [] : [config.backups.schedule, CONTINUE_CRON]);

const ADOPTED_FIELDS = ["id", "title", "previewId", "previewTitle"] as const;

function parseAdopted(raw: Record<string, unknown>, fail: (key: string, detail: string) => never): StackConfig["adoptedNamespaces"] {
  const adopted: StackConfig["adoptedNamespaces"] = {};
  const seen = new Map<string, string>();
  for (const [binding, value] of Object.entries(raw)) {
    const key = `adoptedNamespaces.${binding}`;
    if (!(KV_BINDINGS as readonly string[]).includes(binding)) fail(key, `unknown binding; the bindings are ${KV_BINDINGS.join(", ")}`);
    if (typeof value !== "object" || value === null || Array.isArray(value)) fail(key, `must be a map {id, previewId?, title?, previewTitle?}`);
    const entry = value as Record<string, unknown>;
    for (const field of Object.keys(entry)) {
      if (!(ADOPTED_FIELDS as readonly string[]).includes(field)) fail(`${key}.${field}`, `unknown field; the fields are ${ADOPTED_FIELDS.join(", ")}`);
    }
    for (const field of ADOPTED_FIELDS) {
      const item = entry[field];
      if (item !== undefined && (typeof item !== "string" || item.trim() === "")) fail(`${key}.${field}`, `must be a non-empty string`);
    }
    const namespace = entry as unknown as AdoptedNamespace;
    if (namespace.id === undefined) fail(`${key}.id`, "is required: the existing namespace's id");
    for (const field of ["id", "previewId"] as const) {
      const id = namespace[field];
      if (id === undefined) continue;
      if (!HEX_ID.test(id)) fail(`${key}.${field}`, `"${id}" is not a KV namespace id (32 lower-case hex characters)`);
      // One namespace behind two bindings (or a binding and a preview) would mix their data.
      const other = seen.get(id);
      if (other) fail(`${key}.${field}`, `"${id}" is already adopted as ${other}`);
      seen.set(id, `${key}.${field}`);
    }
    adopted[binding as KvBinding] = namespace;
  }
  return adopted;
}

/** The workers.dev URL, when workers.dev is on and the account subdomain is known. */
export function workersDevUrl(config: StackConfig): string | undefined {
  if (!config.workersDev || config.workersDevSubdomain === undefined) return undefined;
  return `https://${config.workerName}.${config.workersDevSubdomain}.workers.dev`;
}

/** The base URL smoke tests use: the first custom domain, else workers.dev, else the first route's host. */
export function primaryUrl(config: StackConfig): string {
  const routeHost = config.routes.find((r) => !r.startsWith("*"))?.split("/")[0];
  const url = customDomainUrls(config)[0] ?? workersDevUrl(config) ?? (routeHost && `https://${routeHost}`);
  if (!url) throw new ConfigError(config.stack, "customDomains", "the Worker has no URL");
  return url;
}

export const customDomainUrls = (config: StackConfig) => config.customDomains.map((host) => `https://${host}`);

/** Plain-text vars the Worker gets, deployed or local; names from the contract. */
export function workerVars(config: StackConfig, bundleSha256: string): Record<string, string> {
  return {
    [VARS.environment]: config.environment,
    [VARS.originUrl]: config.originUrl,
    [VARS.sessionTtlSeconds]: String(config.sessionTtlSeconds),
    [VARS.sessionMaxLifetimeSeconds]: String(config.sessionMaxLifetimeSeconds),
    [VARS.cacheTtlSeconds]: String(config.cacheTtlSeconds),
    [VARS.managedFlags]: managedNames(config).join(","),
    [VARS.bundleSha256]: bundleSha256,
    [VARS.rateLimits]: JSON.stringify(config.rateLimits.limits),
    [BACKUP_VARS.schedule]: config.backups.schedule,
    [BACKUP_VARS.namespaces]: config.backups.namespaces.join(","),
  };
}

/** Flags declared as code, and each shared evaluator declared as code as `$<name>` (no flag name holds a `$`). */
export const managedNames = (config: Pick<StackConfig, "flags" | "evaluators">) => [
  ...Object.keys(config.flags),
  ...Object.keys(config.evaluators).map((name) => `$${name}`),
];

/**
 * Reads a stack's config from Pulumi.yaml (declared defaults) and
 * Pulumi.<stack>.yaml, without secrets, and validates it.
 */
export function loadStackConfig(stack: string, options: ParseOptions & { root?: string } = {}): StackConfig {
  return parseStackConfig(stack, readStackFiles(stack, options.root ?? ROOT), options);
}

/** Pulumi.yaml defaults overlaid with Pulumi.<stack>.yaml values, keys without the project prefix, secrets left out. */
export function readStackFiles(stack: string, root = ROOT): Record<string, unknown> {
  const stackFile = join(root, `Pulumi.${stack}.yaml`);
  if (!/^[A-Za-z0-9_.-]+$/.test(stack) || !existsSync(stackFile)) {
    throw new ConfigError(stack, undefined, `no stack file Pulumi.${stack}.yaml (create it with \`pulumi stack init ${stack}\`)`);
  }
  return stackFileValues(parseYaml(readFileSync(stackFile, "utf8")), root);
}

/** Pulumi.yaml defaults overlaid with a parsed stack file's values (`npm run adopt` checks a file before writing it). */
export function stackFileValues(stackDocument: unknown, root = ROOT): Record<string, unknown> {
  const project = (parseYaml(readFileSync(join(root, "Pulumi.yaml"), "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const values: Record<string, unknown> = {};
  for (const [key, declaration] of Object.entries(project.config ?? {})) {
    if (typeof declaration === "object" && declaration !== null && "default" in declaration) values[key] = declaration.default;
  }
  const stackValues = ((stackDocument ?? {}) as { config?: Record<string, unknown> }).config ?? {};
  for (const [fullKey, value] of Object.entries(stackValues)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue; // provider settings such as cloudflare:apiToken
    const isSecret = typeof value === "object" && value !== null && "secure" in value;
    if (!isSecret) values[fullKey.slice(PROJECT.length + 1)] = value;
  }
  return values;
}

/** Typed reads that accept a value as YAML parses it or as Pulumi passes it (a string, JSON for structures). */
class Reader {
  constructor(
    private readonly stack: string,
    private readonly raw: Record<string, unknown>,
  ) {}

  private fail(key: string, detail: string): never {
    throw new ConfigError(this.stack, key, detail);
  }

  string(key: string, { required = false } = {}): string {
    const value = this.raw[key];
    if (value === undefined || value === null || value === "") {
      if (required) this.fail(key, `is required; set it with \`pulumi config set ${key} <value> --stack ${this.stack}\``);
      return "";
    }
    if (typeof value !== "string") this.fail(key, `must be a string, got ${JSON.stringify(value)}`);
    return value.trim();
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw[key];
    if (value === undefined || value === "") return fallback;
    if (value === true || value === "true") return true;
    if (value === false || value === "false") return false;
    return this.fail(key, `must be true or false, got ${JSON.stringify(value)}`);
  }

  integer(key: string, bounds: { default: number; min: number; max: number }): number {
    const value = this.raw[key];
    if (value === undefined || value === "") return bounds.default;
    const n = typeof value === "string" ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n)) return this.fail(key, `must be an integer, got ${JSON.stringify(value)}`);
    if (n < bounds.min || n > bounds.max) this.fail(key, `${n} is out of range [${bounds.min}, ${bounds.max}]`);
    return n;
  }

  strings(key: string): string[] {
    const value = this.structured(key) ?? [];
    if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
      return this.fail(key, `must be a list of strings, got ${JSON.stringify(value)}`);
    }
    return value.map((item) => item.trim());
  }

  object(key: string): Record<string, unknown> {
    const value = this.structured(key) ?? {};
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return this.fail(key, `must be a map, got ${JSON.stringify(value)}`);
    }
    return value as Record<string, unknown>;
  }

  private structured(key: string): unknown {
    const value = this.raw[key];
    if (typeof value !== "string") return value;
    try {
      return JSON.parse(value);
    } catch {
      return this.fail(key, `is not valid JSON: ${value}`);
    }
  }
}

/**
 * `rateLimits`: {namespaceBase?, <limit name>?: {limit, period}}; a limit left
 * out takes RATE_LIMIT_DEFAULTS. Untyped in Pulumi.yaml (no "object" type).
 */
const RateLimitSchema = v.strictObject({
  limit: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)),
  period: v.picklist(RATE_LIMIT_PERIODS, "must be 10 or 60 (seconds), the periods the binding supports"),
});
const RateLimitsConfig = v.strictObject({
  namespaceBase: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(2_000_000_000)), 1000),
  ...(Object.fromEntries(RATE_LIMIT_NAMES.map((name) => [name, v.optional(RateLimitSchema)])) as Record<
    (typeof RATE_LIMIT_NAMES)[number],
    v.OptionalSchema<typeof RateLimitSchema, undefined>
  >),
});

function parseRateLimits(value: Record<string, unknown>, fail: (key: string, detail: string) => never): RateLimitsSettings {
  const parsed = v.safeParse(RateLimitsConfig, value);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = v.getDotPath(issue);
    return fail(path ? `rateLimits.${path}` : "rateLimits", issue.message);
  }
  const { namespaceBase, ...given } = parsed.output;
  return {
    namespaceBase,
    limits: Object.fromEntries(RATE_LIMIT_NAMES.map((name) => [name, given[name] ?? RATE_LIMIT_DEFAULTS[name]])) as RateLimitsSettings["limits"],
  };
}
