/**
 * Moves an existing wrangler deployment into a stack without losing data:
 * reads the wrangler config and writes Pulumi.<stack>.yaml so that
 * `pulumi up` imports the existing KV namespaces (and their preview twins)
 * instead of creating empty ones, and keeps the Worker's name, routes,
 * domains, workers.dev, compatibility settings and the vars the Worker reads.
 * It checks the whole result before writing; on any error nothing is written.
 *
 *   npm run adopt -- --stack <name> --from <wrangler.toml|json|jsonc> [--env <wrangler env>]
 *                    [--title SESSIONS=<title>] [--title SESSIONS:preview=<title>] …
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Document, parseDocument, parse as parseYaml, visit } from "yaml";
import { type AdoptedNamespace, ConfigError, HEX_ID, PLACEHOLDER_ID, PROJECT, parseStackConfig, stackFileValues } from "../infra/stack-file";
import { COMPATIBILITY_DATE, COMPATIBILITY_FLAGS, KV_BINDINGS, type KvBinding, SECRETS, VARS } from "../worker/src/contract";
import { ROOT } from "./build";
import { CliError, isMain, parseFlags, runCommand } from "./lib/cli";
import { type WranglerWorker, readWranglerWorker } from "./lib/wrangler-source";

export interface AdoptOptions {
  stack: string;
  from: string;
  env?: string | undefined;
  /** Current namespace titles, `SESSIONS` or `SESSIONS:preview` → title (wrangler's config has none). */
  titles?: Record<string, string>;
  /** Folder with Pulumi.yaml and the stack files; the repository by default. */
  root?: string;
  log?: (line: string) => void;
}

export interface AdoptResult {
  stackFile: string;
  /** Config keys (without the project prefix) and the values written. */
  written: Record<string, unknown>;
  /** What the stack has no place for, each with the reason. */
  unmapped: string[];
}

/** Vars the Worker reads that map to a stack config key; the other VARS are set by the stack itself. */
const VAR_KEYS: Partial<Record<string, { key: string; integer?: boolean }>> = {
  [VARS.originUrl]: { key: "originUrl" },
  [VARS.sessionTtlSeconds]: { key: "sessionTtlSeconds", integer: true },
  [VARS.cacheTtlSeconds]: { key: "cacheTtlSeconds", integer: true },
};
const STACK_VARS = new Set<string>([VARS.environment, VARS.managedFlags, VARS.bundleSha256]);

const OTHER_KEY_REASONS: Record<string, string> = {
  main: "this stack deploys its own bundle (npm run build), not wrangler's entry point",
  observability: "this stack turns observability (logs, invocation logs) on itself",
};

export function adopt(options: AdoptOptions): AdoptResult {
  const { stack, from } = options;
  const root = options.root ?? ROOT;
  const log = options.log ?? (() => {});
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new CliError(`"${stack}" is not a stack name`);
  const worker = readWranglerWorker(from, options.env);
  const at = (key: string) => (worker.env === undefined ? key : `env.${worker.env}.${key}`);
  const unmapped: string[] = [];

  log(`Read ${from}${worker.env ? ` (environment "${worker.env}")` : " (top level)"}:`);
  log(`  worker ${worker.name ?? "(no name)"}, compatibility ${worker.compatibilityDate ?? "(none)"} [${(worker.compatibilityFlags ?? []).join(", ")}]`);
  for (const route of worker.routes) log(`  ${route.customDomain ? "custom domain" : "route"} ${route.pattern}`);
  log(`  workers_dev ${worker.workersDev ?? "(unset)"}`);

  const adopted = adoptedNamespaces(worker, options.titles ?? {}, at, unmapped);
  for (const [binding, ns] of Object.entries(adopted)) {
    log(`  ${binding.padEnd(8)} id ${ns.id}${ns.previewId ? `, preview_id ${ns.previewId}` : ", no preview_id"}`);
  }

  const written: Record<string, unknown> = { adoptedNamespaces: adopted };
  if (worker.accountId !== undefined) written.accountId = worker.accountId.toLowerCase();
  if (worker.name !== undefined) written.workerName = worker.name;
  if (worker.compatibilityDate !== undefined) written.compatibilityDate = worker.compatibilityDate;
  // Keep the flags the deployment runs with, plus the ones this stack's Worker code needs.
  const flags = [...new Set([...(worker.compatibilityFlags ?? []), ...COMPATIBILITY_FLAGS])];
  const added = flags.filter((f) => !(worker.compatibilityFlags ?? []).includes(f));
  if (worker.compatibilityFlags !== undefined || added.length > 0) written.compatibilityFlags = flags;
  if (added.length > 0) unmapped.push(`compatibility_flags: added ${added.join(", ")}, which this stack's Worker needs`);
  if (worker.compatibilityDate !== undefined && worker.compatibilityDate < COMPATIBILITY_DATE) {
    unmapped.push(`compatibility_date ${worker.compatibilityDate} is kept, but this stack's Worker is tested against ${COMPATIBILITY_DATE}; raise it when you can`);
  }
  written.routes = worker.routes.filter((r) => !r.customDomain).map((r) => r.pattern);
  written.customDomains = worker.routes.filter((r) => r.customDomain).map((r) => r.pattern);
  // wrangler deploys to workers.dev unless told otherwise or given routes.
  written.workersDev = worker.workersDev ?? worker.routes.length === 0;
  const zoneNames = [...new Set(worker.routes.flatMap((r) => (r.zoneName ? [r.zoneName] : [])))];
  if (zoneNames.length === 1) written.zoneName = zoneNames[0];
  if (zoneNames.length > 1) unmapped.push(`routes span several zones (${zoneNames.join(", ")}); this stack serves one zone`);
  const zoneIds = [...new Set(worker.routes.flatMap((r) => (r.zoneId ? [r.zoneId] : [])))];
  if (zoneIds.length === 1) written.zoneId = zoneIds[0];

  for (const [name, value] of Object.entries(worker.vars)) {
    const target = VAR_KEYS[name];
    if (target) {
      written[target.key] = target.integer && typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    } else if (STACK_VARS.has(name)) {
      unmapped.push(`vars.${name}: set by the stack itself`);
    } else if (name === SECRETS.adminToken) {
      unmapped.push(`vars.${name}: a plain-text admin token is not copied; set it as a secret: pulumi config set --secret adminToken <token> --stack ${stack} (and rotate it)`);
    } else {
      unmapped.push(`vars.${name}: the Worker does not read it`);
    }
  }
  for (const key of worker.otherKeys) unmapped.push(`${at(key)}: ${OTHER_KEY_REASONS[key] ?? "this stack has no place for it"}`);
  for (const key of worker.notInherited) unmapped.push(`${key} (top level): not inherited by env.${worker.env}, as in wrangler`);

  const stackFile = join(root, `Pulumi.${stack}.yaml`);
  const doc = existsSync(stackFile) ? parseDocument(readFileSync(stackFile, "utf8")) : newStackDocument(stack, from);
  checkConflicts(doc, stackFile, stack, written);
  for (const [key, value] of Object.entries(written)) doc.setIn(["config", `${PROJECT}:${key}`], yamlNode(doc, value));

  // The whole file as Pulumi would read it must pass the program's own checks before it is written.
  try {
    parseStackConfig(stack, stackFileValues(doc.toJS(), root));
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`${from} → Pulumi.${stack}.yaml: ${error.message}; nothing was written`);
    throw error;
  }
  writeFileSync(stackFile, doc.toString());

  log(`\nWrote Pulumi.${stack}.yaml:`);
  for (const [key, value] of Object.entries(written)) log(`  ${PROJECT}:${key} = ${JSON.stringify(value)}`);
  log(unmapped.length ? "\nNot mapped:" : "\nNot mapped: nothing");
  for (const line of unmapped) log(`  ${line}`);
  log(nextSteps(stack, worker));
  return { stackFile, written, unmapped };
}

function adoptedNamespaces(
  worker: WranglerWorker,
  titles: Record<string, string>,
  at: (key: string) => string,
  unmapped: string[],
): Record<KvBinding, AdoptedNamespace> {
  const fail = (key: string, detail: string): never => {
    throw new CliError(`${worker.file}, key ${at(key)}: ${detail}`);
  };
  const hexId = (key: string, id: string) => {
    if (!HEX_ID.test(id.toLowerCase())) fail(key, `"${id}" is not a KV namespace id (32 hex characters)`);
    return id.toLowerCase();
  };
  for (const key of Object.keys(titles)) {
    const [binding, preview] = key.split(":");
    if (!(KV_BINDINGS as readonly string[]).includes(binding ?? "") || (preview !== undefined && preview !== "preview")) {
      throw new CliError(`--title ${key}: expected SESSIONS, CACHE or CONFIG, optionally with :preview`);
    }
  }
  const adopted = {} as Record<KvBinding, AdoptedNamespace>;
  for (const binding of KV_BINDINGS) {
    const index = worker.kvNamespaces.findIndex((ns) => ns.binding === binding);
    const ns = worker.kvNamespaces[index];
    if (!ns) {
      const hint = worker.notInherited.includes("kv_namespaces") ? ` (the top level binds namespaces, but wrangler does not inherit kv_namespaces into env.${worker.env})` : "";
      return fail("kv_namespaces", `no namespace is bound as ${binding}${hint}`);
    }
    if (ns.id === undefined) fail(`kv_namespaces[${index}].id`, `${binding} has no id`);
    const entry: AdoptedNamespace = { id: hexId(`kv_namespaces[${index}].id`, ns.id as string) };
    if (titles[binding]) entry.title = titles[binding];
    if (ns.previewId !== undefined) {
      entry.previewId = hexId(`kv_namespaces[${index}].preview_id`, ns.previewId);
      if (titles[`${binding}:preview`]) entry.previewTitle = titles[`${binding}:preview`];
    } else {
      unmapped.push(`${at(`kv_namespaces[${index}]`)} ${binding} has no preview_id: the stack creates an empty preview namespace for it`);
    }
    adopted[binding] = entry;
  }
  for (const ns of worker.kvNamespaces) {
    if (!(KV_BINDINGS as readonly string[]).includes(ns.binding)) unmapped.push(`${at("kv_namespaces")} ${ns.binding}: the Worker does not use this binding`);
  }
  return adopted;
}

/** Refuses to overwrite what the stack already says differently: adopted ids, or a real account. */
function checkConflicts(doc: Document, stackFile: string, stack: string, written: Record<string, unknown>): void {
  const file = `Pulumi.${stack}.yaml`;
  const existing = (key: string): unknown => {
    const node = doc.getIn(["config", `${PROJECT}:${key}`]);
    return node !== null && typeof node === "object" && "toJSON" in node ? (node as { toJSON(): unknown }).toJSON() : node;
  };
  const account = existing("accountId");
  if (written.accountId !== undefined && typeof account === "string" && account !== PLACEHOLDER_ID && account !== written.accountId) {
    throw new CliError(`${file}, key ${PROJECT}:accountId: the stack is on account ${account}, the wrangler config on ${String(written.accountId)}; nothing was written`);
  }
  const before = (existing("adoptedNamespaces") ?? {}) as Record<string, Partial<AdoptedNamespace>>;
  for (const [binding, ns] of Object.entries(written.adoptedNamespaces as Record<string, AdoptedNamespace>)) {
    for (const field of ["id", "previewId"] as const) {
      const old = before[binding]?.[field];
      if (old !== undefined && old !== ns[field]) {
        throw new CliError(
          `${file}, key ${PROJECT}:adoptedNamespaces.${binding}.${field}: the stack already adopts ${old}, the wrangler config has ${ns[field] ?? "none"}; ` +
            `adopting a different namespace would leave the stack's data behind. Nothing was written (${stackFile})`,
        );
      }
    }
  }
}

/** A YAML node for the value, quoting every string that would read back as something else (a date, a number). */
function yamlNode(doc: Document, value: unknown) {
  const node = doc.createNode(value);
  visit(node, {
    Scalar(_, scalar) {
      // YAML 1.1 readers (Pulumi's among them, for some types) also turn 2026-03-01 into a timestamp.
      const rereads = (schema: "core" | "yaml-1.1") => parseYaml(scalar.value as string, { schema }) === scalar.value;
      if (typeof scalar.value === "string" && !(rereads("core") && rereads("yaml-1.1"))) scalar.type = "QUOTE_DOUBLE";
    },
  });
  return node;
}

function newStackDocument(stack: string, from: string): Document {
  const doc = new Document({ config: {} });
  doc.commentBefore = ` Stack "${stack}", adopted from ${from} by \`npm run adopt\`.\n The admin token is not here: pulumi config set --secret adminToken <token> --stack ${stack}`;
  return doc;
}

function nextSteps(stack: string, worker: WranglerWorker): string {
  const lines = [
    "",
    "Next steps:",
    `  1. pulumi config set --secret adminToken <token> --stack ${stack}   (if the stack has none yet)`,
    `  2. npm run plan -- --stack ${stack}        every namespace shows "import <account>/<id>", none is created`,
    `  3. pulumi preview --stack ${stack}         must show only imports (=) and updates (~): no namespace created (+) or deleted (-)`,
    `  4. pulumi up --stack ${stack}`,
    `  The adopted namespaces are protected and retained on delete. To rename them to ${PROJECT}-${stack}-<binding> later,`,
    "  set adoptedNamespaces.<BINDING>.title after the first `pulumi up` (an in-place update).",
  ];
  if (worker.routes.some((r) => !r.customDomain)) {
    lines.push(
      "  Routes made by wrangler already exist in the zone: import each before `pulumi up`",
      "  (pulumi import cloudflare:index/workersRoute:WorkersRoute <name> '<zone_id>/<route_id>') or delete it, or the create fails.",
    );
  }
  lines.push("  Stop deploying with wrangler once the stack owns the Worker; wrangler.toml stays useful for `wrangler dev`.");
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: {
        stack: { type: "string" },
        from: { type: "string" },
        env: { type: "string" },
        title: { type: "string", multiple: true },
      },
    }),
  );
  if (!values.stack || !values.from) {
    throw new CliError("usage: npm run adopt -- --stack <name> --from <wrangler.toml|wrangler.json|wrangler.jsonc> [--env <wrangler env>] [--title SESSIONS=<title>]");
  }
  const titles: Record<string, string> = {};
  for (const item of values.title ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) throw new CliError(`--title ${item}: expected <BINDING>=<title>`);
    titles[item.slice(0, eq)] = item.slice(eq + 1);
  }
  const result = adopt({ stack: values.stack, from: values.from, env: values.env, titles, log: (line) => console.log(line) });
  console.log(`\nadopt: ${KV_BINDINGS.length} namespaces adopted into ${result.stackFile.slice(ROOT.length + 1)}, ${result.unmapped.length} items not mapped`);
}

if (isMain(import.meta.url)) runCommand("adopt", main);
