/**
 * Renders a mock-engine recording for reviewers: a table, JSON, a Mermaid
 * diagram, and the differences between two stacks.
 */
import { KEY_PREFIX } from "../../worker/src/contract";
import { isShorthand, readDefinition } from "../../worker/src/flags";
import type { RecordedBinding as Binding, RecordedResource, Recording } from "./record";

/** The short type name: `cloudflare:index/workerVersion:WorkerVersion` → `WorkerVersion`. */
const shortType = (type: string) => type.split(":").pop() ?? type;

type Inputs = Record<string, unknown>;

/** Resource IDs in a recording are mock IDs; show the namespace title they stand for instead. */
function namespaceTitles(recording: Recording): Map<string, string> {
  return new Map(
    recording.resources
      .filter((r) => shortType(r.type) === "WorkersKvNamespace" && r.id)
      .map((r) => [r.id as string, r.ignoreChanges?.includes("title") ? `adopted ${r.id}` : String(r.inputs.title)]),
  );
}

/** Mock IDs of versions uploaded by this update → a readable name; any other ID is a version already deployed. */
function versionLabels(recording: Recording): Map<string, string> {
  return new Map(
    recording.resources.filter((r) => shortType(r.type) === "WorkerVersion" && r.id).map((r) => [r.id as string, `${r.name} (uploaded by this update)`]),
  );
}

interface Module {
  name: string;
  contentFile?: string;
  contentSha256?: string;
}

function details(resource: RecordedResource, titles: Map<string, string>, versions: Map<string, string>): string[] {
  const i: Inputs = resource.inputs;
  const ns = (id: unknown) => titles.get(String(id)) ?? String(id);
  const version = (id: unknown) => versions.get(String(id)) ?? `version ${String(id)}`;
  switch (shortType(resource.type)) {
    case "WorkersKvNamespace":
      return [`title ${i.title}`];
    case "Worker": {
      const subdomain = (i.subdomain ?? {}) as { enabled?: boolean; previewsEnabled?: boolean };
      return [
        `worker ${i.name}`,
        `workers.dev ${subdomain.enabled ? "on" : "off"}, version preview URLs ${subdomain.previewsEnabled ? "on" : "off"}`,
        `observability ${JSON.stringify(i.observability)}`,
      ];
    }
    case "WorkerVersion": {
      const annotations = (i.annotations ?? {}) as { workersTag?: string; workersMessage?: string };
      const modules = (i.modules as Module[] | undefined) ?? [];
      return [
        `main module ${i.mainModule}`,
        ...modules.map((m) => (m.contentFile ? `code ${m.contentFile}, sha256 ${m.contentSha256}` : `code ${m.name} (inline stub)`)),
        `tag ${JSON.stringify(annotations.workersTag)}, message ${JSON.stringify(annotations.workersMessage)}`,
        `compatibility ${i.compatibilityDate} [${(i.compatibilityFlags as string[] | undefined)?.join(", ") ?? ""}]`,
        ...((i.bindings as Binding[] | undefined) ?? []).map((b) => {
          switch (b.type) {
            case "kv_namespace":
              return `binding ${b.name} → ${ns(b.namespaceId)} (kv_namespace)`;
            case "inherit":
              return `binding ${b.name} ← ${version(b.versionId)} (inherit)`;
            case "version_metadata":
              return `binding ${b.name} (version_metadata)`;
            case "ratelimit":
              return `binding ${b.name}: ${b.simple?.limit} per ${b.simple?.period} s, namespace ${b.namespaceId} (ratelimit)`;
            case "r2_bucket":
              return `binding ${b.name} → bucket ${b.bucketName} (r2_bucket)`;
            default:
              return `binding ${b.name} = ${JSON.stringify(b.text)} (${b.type})`;
          }
        }),
      ];
    }
    case "WorkersDeployment":
      return [
        `deployment of ${i.scriptName}, strategy ${i.strategy}`,
        ...((i.versions as { versionId: string; percentage: number }[] | undefined) ?? []).map(
          (v) => `traffic ${String(v.percentage).padStart(3)} % → ${version(v.versionId)}`,
        ),
      ];
    case "WorkersRoute":
      return [`route ${i.pattern} → ${i.script} (zone ${i.zoneId})`];
    case "WorkersCustomDomain":
      return [`domain https://${i.hostname} → ${i.service} (zone ${i.zoneId ?? i.zoneName})`];
    case "WorkersKv":
      return [`key ${i.keyName} in ${ns(i.namespaceId)}`, ...kvEntryLines(String(i.keyName), String(i.value), String(i.metadata))];
    default:
      return Object.entries(i).map(([k, v]) => `${k} ${JSON.stringify(v)}`);
  }
}

/**
 * A flag or evaluator as a reviewer reads it: state, default, one line per
 * variant, the targeting rule indented line by line, so that a change shows
 * as the lines that changed rather than as a new JSON blob.
 */
function kvEntryLines(keyName: string, value: string, metadata: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return [`value ${value}`, `metadata ${metadata}`];
  }
  const listed = metadata.includes('"oversize"') ? "too large for list metadata: 1 extra read when listed" : "carried whole in list metadata";
  const rule = (label: string, targeting: unknown) => [label, ...ruleLines(targeting, "  ")];
  if (keyName.startsWith(KEY_PREFIX.evaluator)) return [...rule("evaluator rule:", parsed), listed];
  const flag = readDefinition(parsed);
  if (!flag) return [`value ${value}`, `metadata ${metadata}`];
  const meta = Object.entries(flag.metadata ?? {}).map(([k, v]) => `metadata ${k} = ${JSON.stringify(v)}`);
  if (isShorthand(flag)) {
    return [
      `shorthand flag: ${flag.enabled ? "enabled" : "disabled"}${flag.percentage === undefined ? "" : `, ${flag.percentage} % of users (by user id)`}`,
      ...(flag.allowedUsers?.length ? [`allowed users: ${flag.allowedUsers.join(", ")}`] : []),
      ...meta,
      listed,
    ];
  }
  return [
    `flagd flag: ${flag.state}, default variant ${flag.defaultVariant == null ? "none (the caller's default)" : JSON.stringify(flag.defaultVariant)}`,
    ...Object.entries(flag.variants).map(([name, variant]) => `variant ${name} = ${JSON.stringify(variant)}`),
    ...(flag.targeting === undefined || JSON.stringify(flag.targeting) === "{}" ? ["targeting none"] : rule("targeting:", flag.targeting)),
    ...meta,
    listed,
  ];
}

/** JSON Logic one operation per line: a short rule on one line, a long one as its operator and its arguments indented below. */
function ruleLines(rule: unknown, indent: string): string[] {
  const text = JSON.stringify(rule);
  if (text.length <= 72 || typeof rule !== "object" || rule === null) return [`${indent}${text}`];
  if (Array.isArray(rule)) return [`${indent}[`, ...rule.flatMap((item) => ruleLines(item, `${indent}  `)), `${indent}]`];
  return Object.entries(rule).flatMap(([op, args]) => [
    `${indent}${op}`,
    ...(Array.isArray(args) ? args.flatMap((arg) => ruleLines(arg, `${indent}  `)) : ruleLines(args, `${indent}  `)),
  ]);
}

const safety = (r: RecordedResource) =>
  [r.protect && "protect", r.retainOnDelete && "retainOnDelete"].filter(Boolean).join(", ") || "-";

/** One row per managed resource (components are only grouping), then the stack outputs. */
export function renderTable(recording: Recording): string {
  const titles = namespaceTitles(recording);
  const versions = versionLabels(recording);
  const rows = recording.resources.filter((r) => r.custom);
  const typeWidth = Math.max(4, ...rows.map((r) => shortType(r.type).length));
  const nameWidth = Math.max(4, ...rows.map((r) => r.name.length));
  const safetyWidth = Math.max(6, ...rows.map((r) => safety(r).length));
  const line = (a: string, b: string, c: string, d: string) =>
    `${a.padEnd(typeWidth)}  ${b.padEnd(nameWidth)}  ${c.padEnd(safetyWidth)}  ${d}`.trimEnd();
  const imports = rows.filter((r) => r.importId).length;
  const out = [
    `Plan for stack "${recording.stack}": ${rows.length} resources${imports ? ` (${imports} imported, not created)` : ""}`,
    "",
    line("TYPE", "NAME", "SAFETY", "INPUTS"),
  ];
  for (const r of rows) {
    const [first = "", ...rest] = [...details(r, titles, versions), ...(r.importId ? [`import ${r.importId}`] : [])];
    out.push(line(shortType(r.type), r.name, safety(r), first));
    for (const more of rest) out.push(line("", "", "", more));
  }
  out.push("", "Outputs:");
  for (const [name, value] of Object.entries(recording.outputs)) {
    const shown = typeof value === "object" && value !== null && !Array.isArray(value) ? mapIds(value, titles) : value;
    out.push(`  ${name.padEnd(20)} ${JSON.stringify(shown) ?? "(none)"}${recording.secretOutputs.includes(name) ? " (secret)" : ""}`);
  }
  return `${out.join("\n")}\n`;
}

function mapIds(value: object, titles: Map<string, string>) {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, titles.get(String(v)) ?? v]));
}

/** The recording as JSON: managed resources with inputs and options, and the outputs. */
function parseOr(value: unknown): unknown {
  try {
    return typeof value === "string" ? JSON.parse(value) : value;
  } catch {
    return value;
  }
}

export function toJson(recording: Recording): string {
  const resources = recording.resources.map(({ id: _id, ...r }) => r);
  return `${JSON.stringify({ stack: recording.stack, resources, outputs: recording.outputs, secretOutputs: recording.secretOutputs }, null, 2)}\n`;
}

/** A flowchart GitHub renders: requests → routes/domains → worker → namespaces (and flags → CONFIG). */
export function renderMermaid(recording: Recording): string {
  const titles = namespaceTitles(recording);
  const id = (name: string) => name.replace(/[^A-Za-z0-9_]/g, "_");
  const script = recording.resources.find((r) => shortType(r.type) === "Worker");
  const release = recording.resources.find((r) => shortType(r.type) === "WorkerVersion" && r.name.endsWith("-version"));
  const out = ["```mermaid", "flowchart LR"];
  if (!script) return [...out, "```", ""].join("\n");
  const worker = id(script.name);
  out.push(`  ${worker}["Worker ${script.inputs.name}"]`);
  if ((script.inputs.subdomain as { enabled?: boolean } | undefined)?.enabled) out.push(`  workers_dev(["workers.dev"]) --> ${worker}`);
  for (const r of recording.resources.filter((r) => r.custom)) {
    const i = r.inputs;
    switch (shortType(r.type)) {
      case "WorkersRoute":
        out.push(`  ${id(r.name)}(["route ${i.pattern}"]) --> ${worker}`);
        break;
      case "WorkersCustomDomain":
        out.push(`  ${id(r.name)}(["https://${i.hostname}"]) --> ${worker}`);
        break;
      case "WorkersDeployment":
        for (const [n, v] of ((i.versions as { versionId: string; percentage: number }[] | undefined) ?? []).entries()) {
          const label = recording.resources.some((res) => res.id === v.versionId) ? "new version" : `version ${v.versionId.slice(0, 8)}`;
          out.push(`  ${worker} -->|${v.percentage} %| ${id(`${r.name}_${n}`)}{{"${label}"}}`);
        }
        break;
      case "WorkersKv":
        out.push(`  ${id(r.name)}["${i.keyName}"] -.-> ${id(`ns_${i.namespaceId}`)}`);
        break;
    }
  }
  for (const b of ((release?.inputs.bindings as Binding[] | undefined) ?? []).filter((b) => b.type === "kv_namespace")) {
    const protectedNs = recording.resources.find((r) => r.id === b.namespaceId)?.protect;
    out.push(`  ${worker} -->|${b.name}| ${id(`ns_${b.namespaceId}`)}[("${titles.get(String(b.namespaceId))}${protectedNs ? " 🔒" : ""}")]`);
  }
  for (const r of recording.resources.filter((r) => shortType(r.type) === "WorkersKvNamespace" && r.name.endsWith("-preview"))) {
    out.push(`  ${id(`ns_${r.id}`)}[("${r.inputs.title}")]:::preview`);
  }
  out.push("  classDef preview stroke-dasharray: 4 4", "```", "");
  return out.join("\n");
}

/**
 * What differs between two stacks, resource by resource and input by input,
 * with each stack's own name written as <stack> so that names derived from it
 * do not count as differences.
 */
export function diffRecordings(a: Recording, b: Recording): string {
  const flatten = (recording: Recording) => {
    const entries = new Map<string, Map<string, string>>();
    for (const r of recording.resources.filter((r) => r.custom)) {
      const fields = new Map<string, string>();
      const walk = (value: unknown, path: string) => {
        if (Array.isArray(value)) {
          value.forEach((item, index) => {
            const key = typeof item === "object" && item !== null && "name" in item ? String(item.name) : String(index);
            walk(item, `${path}[${key}]`);
          });
        } else if (typeof value === "object" && value !== null) {
          for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
        } else {
          fields.set(path, JSON.stringify(value).replaceAll(recording.stack, "<stack>"));
        }
      };
      // A flag's or evaluator's value is JSON text: compare it field by field (variants.gold, targeting.if[0]…), not as one string.
      const { metadata: _metadata, ...kvInputs } = r.inputs;
      const inputs = shortType(r.type) === "WorkersKv" ? { ...kvInputs, value: parseOr(r.inputs.value) } : r.inputs;
      walk(inputs, "");
      fields.set("(options)", safety(r));
      if (r.importId) fields.set("(import)", r.importId);
      entries.set(`${shortType(r.type)} ${r.name}`, fields);
    }
    return entries;
  };
  const left = flatten(a);
  const right = flatten(b);
  const out = [`Differences between stack "${a.stack}" (-) and stack "${b.stack}" (+):`, ""];
  for (const key of [...new Set([...left.keys(), ...right.keys()])].sort()) {
    const l = left.get(key);
    const r = right.get(key);
    if (!r) out.push(`- ${key} (only in ${a.stack})`);
    else if (!l) out.push(`+ ${key} (only in ${b.stack})`);
    else {
      const changed = [...new Set([...l.keys(), ...r.keys()])].filter((f) => l.get(f) !== r.get(f));
      if (changed.length === 0) continue;
      out.push(`~ ${key}`);
      for (const f of changed) out.push(`    ${f}: ${l.get(f) ?? "(unset)"} → ${r.get(f) ?? "(unset)"}`);
    }
  }
  if (out.length === 2) out.push("(no differences)");
  return `${out.join("\n")}\n`;
}
