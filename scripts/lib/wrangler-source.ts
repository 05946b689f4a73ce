/**
 * Reads an existing wrangler deployment's config (wrangler.toml, .json or
 * .jsonc) and resolves one environment the way wrangler itself does: an
 * `[env.X]` section inherits the top-level "inheritable" keys (name, account,
 * compatibility, routes, workers_dev…) but never the bindings or vars, and
 * without its own `name` the Worker is `<name>-<X>`.
 * https://developers.cloudflare.com/workers/wrangler/environments/
 */
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { type ParseError, parse as parseJsonc, printParseErrorCode } from "jsonc-parser";
import { TomlError, parse as parseToml } from "smol-toml";
import { CliError } from "./cli";

/** Keys an environment takes from the top level when it does not set them (wrangler's "inheritable" keys). */
const INHERITABLE = new Set([
  "name", "account_id", "main", "compatibility_date", "compatibility_flags", "workers_dev", "preview_urls", "route",
  "routes", "zone_id", "build", "no_bundle", "minify", "keep_vars", "logpush", "limits", "observability",
  "placement", "rules", "triggers", "usage_model", "tsconfig", "jsx_factory", "jsx_fragment", "upload_source_maps",
  "find_additional_modules", "base_dir", "preserve_file_names", "assets", "send_metrics", "keep_names",
]);
/** Top-level only: what configures wrangler itself, never a Worker. */
const TOOLING_KEYS = new Set(["$schema", "env", "legacy_env", "dev", "site", "migrations"]);

export interface WranglerRoute {
  pattern: string;
  zoneName?: string;
  zoneId?: string;
  customDomain: boolean;
}

export interface WranglerNamespace {
  binding: string;
  id?: string;
  previewId?: string;
}

/** One wrangler environment, resolved: what this stack can take over, plus every other key as found. */
export interface WranglerWorker {
  file: string;
  env: string | undefined;
  name: string | undefined;
  accountId: string | undefined;
  compatibilityDate: string | undefined;
  compatibilityFlags: string[] | undefined;
  workersDev: boolean | undefined;
  routes: WranglerRoute[];
  kvNamespaces: WranglerNamespace[];
  vars: Record<string, unknown>;
  /** Keys of the resolved environment this reader does not interpret (bindings, main, observability…). */
  otherKeys: string[];
  /** Bindings the top level declares that the environment does not (wrangler does not inherit them). */
  notInherited: string[];
}

type Table = Record<string, unknown>;
const isTable = (value: unknown): value is Table => typeof value === "object" && value !== null && !Array.isArray(value);

/** Parses the file by its extension; a syntax error names the file, line and column. */
export function parseWranglerFile(file: string): Table {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(code === "ENOENT" ? `${file}: no such file` : `${file}: cannot read it (${code ?? String(error)})`);
  }
  const ext = extname(file).toLowerCase();
  if (ext === ".toml") {
    try {
      return parseToml(text);
    } catch (error) {
      const where = error instanceof TomlError ? ` at line ${error.line}, column ${error.column}` : "";
      throw new CliError(`${file}: invalid TOML${where}: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`);
    }
  }
  if (ext === ".json" || ext === ".jsonc") {
    const errors: ParseError[] = [];
    // wrangler accepts comments and trailing commas in both .json and .jsonc.
    const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
    const first = errors[0];
    if (first) {
      const line = text.slice(0, first.offset).split("\n").length;
      throw new CliError(`${file}: invalid JSON at line ${line}: ${printParseErrorCode(first.error)}`);
    }
    if (!isTable(value)) throw new CliError(`${file}: expected a JSON object at the top level`);
    return value;
  }
  throw new CliError(`${basename(file)}: not a wrangler config (expected wrangler.toml, wrangler.json or wrangler.jsonc)`);
}

/** The config wrangler would use for `--env <env>` (or the top level without one). */
export function resolveEnvironment(file: string, top: Table, env: string | undefined): Table {
  if (env === undefined) return Object.fromEntries(Object.entries(top).filter(([key]) => !TOOLING_KEYS.has(key)));
  const envs = isTable(top.env) ? top.env : {};
  const section = envs[env];
  if (!isTable(section)) {
    const known = Object.keys(envs);
    throw new CliError(`${file}: no environment "${env}" (env.${env}); ${known.length ? `the file has ${known.map((e) => `"${e}"`).join(", ")}` : "the file has no [env.*] sections"}`);
  }
  const resolved: Table = {};
  for (const [key, value] of Object.entries(top)) if (INHERITABLE.has(key)) resolved[key] = value;
  if (typeof top.name === "string") resolved.name = `${top.name}-${env}`;
  return { ...resolved, ...section };
}

/** Reads and resolves a wrangler config, checking the shape of every key this stack maps. */
export function readWranglerWorker(file: string, env?: string): WranglerWorker {
  const top = parseWranglerFile(file);
  const config = resolveEnvironment(file, top, env);
  const at = (key: string) => (env === undefined ? key : `env.${env}.${key}`);
  const fail = (key: string, detail: string): never => {
    throw new CliError(`${file}, key ${at(key)}: ${detail}`);
  };
  const optionalString = (key: string) => {
    const value = config[key];
    if (value !== undefined && typeof value !== "string") fail(key, `must be a string, got ${JSON.stringify(value)}`);
    return value as string | undefined;
  };

  const flags = config.compatibility_flags;
  if (flags !== undefined && !(Array.isArray(flags) && flags.every((f) => typeof f === "string"))) fail("compatibility_flags", "must be a list of strings");
  const workersDev = config.workers_dev;
  if (workersDev !== undefined && typeof workersDev !== "boolean") fail("workers_dev", "must be true or false");

  const rawRoutes = config.routes ?? (config.route === undefined ? [] : [config.route]);
  if (!Array.isArray(rawRoutes)) fail("routes", "must be a list");
  const routes = (rawRoutes as unknown[]).map((route, i): WranglerRoute => {
    if (typeof route === "string") return { pattern: route, customDomain: false };
    if (!isTable(route) || typeof route.pattern !== "string") return fail(`routes[${i}]`, "must be a pattern or {pattern, zone_name?, zone_id?, custom_domain?}");
    return {
      pattern: route.pattern,
      customDomain: route.custom_domain === true,
      ...(typeof route.zone_name === "string" ? { zoneName: route.zone_name } : {}),
      ...(typeof route.zone_id === "string" ? { zoneId: route.zone_id } : {}),
    };
  });

  const rawNamespaces = config.kv_namespaces ?? [];
  if (!Array.isArray(rawNamespaces)) fail("kv_namespaces", "must be a list of {binding, id, preview_id?}");
  const kvNamespaces = (rawNamespaces as unknown[]).map((ns, i): WranglerNamespace => {
    if (!isTable(ns) || typeof ns.binding !== "string") return fail(`kv_namespaces[${i}]`, "must be {binding, id, preview_id?}");
    for (const field of ["id", "preview_id"]) {
      if (ns[field] !== undefined && typeof ns[field] !== "string") fail(`kv_namespaces[${i}].${field}`, "must be a string");
    }
    return {
      binding: ns.binding,
      ...(ns.id !== undefined ? { id: ns.id as string } : {}),
      ...(ns.preview_id !== undefined ? { previewId: ns.preview_id as string } : {}),
    };
  });

  const vars = config.vars ?? {};
  if (!isTable(vars)) fail("vars", "must be a table of name = value");

  const mapped = new Set(["name", "account_id", "compatibility_date", "compatibility_flags", "workers_dev", "route", "routes", "kv_namespaces", "vars"]);
  const notInherited = env === undefined ? [] : Object.keys(top).filter((key) => !INHERITABLE.has(key) && !TOOLING_KEYS.has(key) && !(key in config));
  return {
    file,
    env,
    name: optionalString("name"),
    accountId: optionalString("account_id"),
    compatibilityDate: optionalString("compatibility_date"),
    compatibilityFlags: flags as string[] | undefined,
    workersDev: workersDev as boolean | undefined,
    routes,
    kvNamespaces,
    vars: vars as Table,
    otherKeys: Object.keys(config).filter((key) => !mapped.has(key) && !TOOLING_KEYS.has(key)),
    notInherited,
  };
}
