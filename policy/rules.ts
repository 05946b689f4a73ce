/**
 * The stack's policies as plain functions over a list of resources, so that
 * the same rules run in `pulumi preview --policy-pack policy` (./index.ts
 * adapts Pulumi's resources) and in the offline `npm run plan` (which adapts
 * the mock engine's recording). Nothing here imports Pulumi.
 *
 * Bindings are checked on the Worker script (`WorkersScript`) and on Worker
 * versions (`WorkerVersion`, same binding shape), and the traffic split on
 * `WorkersDeployment`, so the rules hold whichever of them the program uses.
 */
import { BACKUP_VARS, BACKUPS_BINDING } from "../worker/src/backup/format";
import { SECRETS } from "../worker/src/contract";

export const TYPES = {
  namespace: "cloudflare:index/workersKvNamespace:WorkersKvNamespace",
  script: "cloudflare:index/workersScript:WorkersScript",
  version: "cloudflare:index/workerVersion:WorkerVersion",
  worker: "cloudflare:index/worker:Worker",
  deployment: "cloudflare:index/workersDeployment:WorkersDeployment",
  subdomain: "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain",
  route: "cloudflare:index/workersRoute:WorkersRoute",
  domain: "cloudflare:index/workersCustomDomain:WorkersCustomDomain",
  bucket: "cloudflare:index/r2Bucket:R2Bucket",
  lifecycle: "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle",
  cron: "cloudflare:index/workersCronTrigger:WorkersCronTrigger",
} as const;

/** A resource as both the policy engine and the mock engine can describe it. */
export interface StackResource {
  type: string;
  /** Logical name. */
  name: string;
  /** Provider id, when known (unknown for a resource a preview would create). */
  id?: string | undefined;
  /** Inputs (mock engine) or properties (policy engine); a value not known yet is not a string/number. */
  inputs: Record<string, unknown>;
  protect: boolean;
  /** undefined where the engine does not say (Pulumi's policy API does not expose retainOnDelete). */
  retainOnDelete?: boolean | undefined;
}

/** What the rules know about the stack besides its resources, read from the stack files. */
export interface PolicyContext {
  stack: string;
  protect: boolean;
  zoneName: string | undefined;
  /** Namespace ids other stacks adopt (their stack files), id → stack. */
  otherStacksNamespaces: ReadonlyMap<string, string>;
  today: Date;
}

export type EnforcementLevel = "mandatory" | "advisory";

export interface Violation {
  /** Logical name of the offending resource. */
  resource: string;
  message: string;
}

export interface Rule {
  name: string;
  description: string;
  enforcementLevel: EnforcementLevel;
  check(resources: readonly StackResource[], context: PolicyContext): Violation[];
}

interface Binding {
  type?: unknown;
  name?: unknown;
  namespaceId?: unknown;
  text?: unknown;
  bucketName?: unknown;
  /** Of an `inherit` binding: the version it inherits the value from. */
  versionId?: unknown;
}

const ofType = (resources: readonly StackResource[], ...types: string[]) => resources.filter((r) => types.includes(r.type));
/** Every binding of every Worker script or version, with its owner. */
const bindings = (resources: readonly StackResource[]) =>
  ofType(resources, TYPES.script, TYPES.version).flatMap((owner) =>
    (Array.isArray(owner.inputs.bindings) ? (owner.inputs.bindings as Binding[]) : []).map((binding) => ({ owner, binding })),
  );
const isPreviewNamespace = (ns: StackResource) =>
  ns.name.endsWith("-preview") || (typeof ns.inputs.title === "string" && /[-_]preview$/i.test(ns.inputs.title));
const inZone = (host: string, zone: string) => host === zone || host.endsWith(`.${zone}`);
const SECRET_LOOKING_NAME = /TOKEN|SECRET|KEY|PASSWORD/i;
const stackFile = (context: PolicyContext) => `Pulumi.${context.stack}.yaml`;

const kvBindingsOwnNamespaces: Rule = {
  name: "kv-bindings-own-production-namespaces",
  description: "A Worker's KV bindings point only at its own stack's production namespaces: never another stack's, never a preview namespace.",
  enforcementLevel: "mandatory",
  check(resources, context) {
    const namespaces = ofType(resources, TYPES.namespace);
    const out: Violation[] = [];
    for (const { owner, binding } of bindings(resources)) {
      const id = binding.namespaceId;
      // A namespace the preview would create has no id yet; its binding can only be this stack's own.
      if (binding.type !== "kv_namespace" || typeof id !== "string") continue;
      const name = String(binding.name);
      const fix = `bind ${name} to this stack's own namespace (kv-worker-stack:adoptedNamespaces.${name} in ${stackFile(context)}, or none to let the stack create it)`;
      const otherStack = context.otherStacksNamespaces.get(id);
      const ns = namespaces.find((r) => r.id === id);
      if (otherStack !== undefined) {
        out.push({ resource: owner.name, message: `binding ${name} points at namespace ${id}, which stack "${otherStack}" uses; ${fix}` });
      } else if (!ns) {
        out.push({ resource: owner.name, message: `binding ${name} points at namespace ${id}, which this stack does not manage; ${fix}` });
      } else if (isPreviewNamespace(ns)) {
        out.push({ resource: owner.name, message: `binding ${name} points at the preview namespace ${ns.name} (for \`wrangler dev --remote\` only); bind the production namespace` });
      }
    }
    return out;
  },
};

const adminTokenSecret: Rule = {
  name: "admin-token-secret-text",
  description: "The admin token is bound only as a secret_text binding, or inherited from a version of this stack that binds it so.",
  enforcementLevel: "mandatory",
  check(resources) {
    const all = bindings(resources);
    const versions = ofType(resources, TYPES.version);
    // Releases inherit the token from the stack's secrets version (infra/components/worker-service.ts):
    // fine when that version binds it as secret_text. Unknowable while a preview has no id for it yet, or
    // when the engine does not say which version has which id: then only a version found to differ is refused.
    const inheritsSecret = (binding: Binding) => {
      if (binding.type !== "inherit") return false;
      const source = versions.find((version) => version.id !== undefined && version.id === binding.versionId);
      if (!source) return typeof binding.versionId !== "string" || versions.some((version) => version.id === undefined);
      return all.some(({ owner, binding: b }) => owner === source && b.name === binding.name && b.type === "secret_text");
    };
    return all
      .filter(({ binding }) => typeof binding.name === "string" && binding.name.startsWith(SECRETS.adminToken))
      .filter(({ binding }) => binding.type !== "secret_text" && !inheritsSecret(binding))
      .map(({ owner, binding }) => ({
        resource: owner.name,
        message:
          binding.type === "inherit"
            ? `binding ${String(binding.name)} inherits from version ${String(binding.versionId)}, which does not bind it as secret_text in this stack; inherit it from the stack's secrets version (worker-secrets)`
            : `binding ${String(binding.name)} is ${String(binding.type)}; bind the admin token as secret_text from a Pulumi secret (pulumi config set --secret adminToken <token>)`,
      }));
  },
};

const noPlainTextSecrets: Rule = {
  name: "no-plain-text-secrets",
  description: "No plain_text binding whose name looks like a secret (TOKEN, SECRET, KEY, PASSWORD).",
  enforcementLevel: "mandatory",
  check(resources) {
    return bindings(resources)
      .filter(({ binding }) => binding.type === "plain_text" && typeof binding.name === "string" && SECRET_LOOKING_NAME.test(binding.name))
      .map(({ owner, binding }) => ({
        resource: owner.name,
        message: `plain_text binding ${String(binding.name)} looks like a secret, and plain text shows in the dashboard, the state and every plan; make it a secret_text binding fed by a Pulumi secret (pulumi config set --secret …), or rename it if it is not one`,
      }));
  },
};

const protectedNamespaces: Rule = {
  name: "protected-production-namespaces",
  description: "In a stack with protect on, every production namespace is protected and retained on delete.",
  enforcementLevel: "mandatory",
  check(resources, context) {
    if (!context.protect) return [];
    return ofType(resources, TYPES.namespace)
      .filter((ns) => !isPreviewNamespace(ns) && (!ns.protect || ns.retainOnDelete === false))
      .map((ns) => ({
        resource: ns.name,
        message: `${ns.name} is not ${ns.protect ? "retained on delete" : "protected"} in a stack with protect: true, so a destroy or replacement could delete its data; give it { protect: true, retainOnDelete: true } (KvNamespaces does when protect is on)`,
      }));
  },
};

/**
 * Flags changed through the API exist nowhere but CONFIG, and KV has no
 * backup of its own: a production stack must back CONFIG up, to a bucket it
 * keeps, on a schedule, with a retention rule.
 */
const productionBacksUpConfig: Rule = {
  name: "protected-stack-backs-up-config",
  description: "A stack with protect on backs CONFIG up to a protected, retained R2 bucket with a lifecycle rule, on a cron schedule.",
  enforcementLevel: "mandatory",
  check(resources, context) {
    const versions = ofType(resources, TYPES.script, TYPES.version);
    // Without a Worker there is nothing to run a backup, and nothing to name.
    if (!context.protect || versions.length === 0) return [];
    const fix = `set kv-worker-stack:backups in ${stackFile(context)} with namespaces: [CONFIG, …] (docs/backups.md)`;
    const owner = versions[0]!.name;
    const all = bindings(resources);
    const bound = all.filter(({ binding }) => binding.type === "r2_bucket" && binding.name === BACKUPS_BINDING);
    const namespaces = all.find(({ binding }) => binding.type === "plain_text" && binding.name === BACKUP_VARS.namespaces)?.binding.text;
    const out: Violation[] = [];
    if (bound.length === 0) out.push({ resource: owner, message: `the Worker has no ${BACKUPS_BINDING} R2 binding, so nothing backs KV up; ${fix}` });
    if (typeof namespaces !== "string" || !namespaces.split(",").includes("CONFIG")) {
      out.push({ resource: owner, message: `CONFIG is not among the namespaces backed up (${BACKUP_VARS.namespaces}=${String(namespaces ?? "")}); ${fix}` });
    }
    if (!ofType(resources, TYPES.cron).some((r) => Array.isArray(r.inputs.schedules) && r.inputs.schedules.length > 0)) {
      out.push({ resource: owner, message: `the Worker has no cron trigger, so no backup ever runs; ${fix}` });
    }
    const buckets = ofType(resources, TYPES.bucket);
    for (const bucket of buckets) {
      if (!bucket.protect || bucket.retainOnDelete === false) {
        out.push({ resource: bucket.name, message: `the backups bucket is not ${bucket.protect ? "retained on delete" : "protected"} in a stack with protect: true; BackupBucket does it when protect is on` });
      }
    }
    if (buckets.length > 0 && ofType(resources, TYPES.lifecycle).length === 0) {
      out.push({ resource: buckets[0]!.name, message: "the backups bucket has no lifecycle rule, so retention is not enforced; BackupBucket adds one from backups.retainDays" });
    }
    return out;
  },
};

const routesInZone: Rule = {
  name: "routes-in-stack-zone",
  description: "Routes and custom domains are inside the stack's zone.",
  enforcementLevel: "mandatory",
  check(resources, context) {
    const zone = context.zoneName?.toLowerCase();
    const out: Violation[] = [];
    const check = (resource: StackResource, what: string, host: string) => {
      if (zone === undefined) {
        out.push({ resource: resource.name, message: `${what} is served, but the stack has no zone; set kv-worker-stack:zoneName in ${stackFile(context)}` });
      } else if (!inZone(host.toLowerCase(), zone)) {
        out.push({ resource: resource.name, message: `${what} is outside the stack's zone ${zone}; use a hostname in ${zone}, or change kv-worker-stack:zoneName` });
      }
    };
    for (const route of ofType(resources, TYPES.route)) {
      const pattern = route.inputs.pattern;
      if (typeof pattern === "string") check(route, `route ${pattern}`, pattern.split("/")[0]!.replace(/^\*\.?/, ""));
    }
    for (const domain of ofType(resources, TYPES.domain)) {
      const hostname = domain.inputs.hostname;
      if (typeof hostname === "string") check(domain, `custom domain ${hostname}`, hostname);
    }
    return out;
  },
};

const deploymentSplit: Rule = {
  name: "deployment-percentages-sum-to-100",
  description: "A deployment's version percentages sum to 100.",
  enforcementLevel: "mandatory",
  check(resources) {
    const out: Violation[] = [];
    for (const deployment of ofType(resources, TYPES.deployment)) {
      const versions = Array.isArray(deployment.inputs.versions) ? (deployment.inputs.versions as { percentage?: unknown }[]) : [];
      const percentages = versions.map((v) => v.percentage);
      if (!percentages.every((p) => typeof p === "number")) continue; // not known until the versions exist
      const sum = (percentages as number[]).reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 100) > 1e-9) {
        out.push({ resource: deployment.name, message: `the versions' percentages sum to ${sum}, not 100; give the versions shares that add up to 100` });
      }
    }
    return out;
  },
};

const workersDevInProtectedStack: Rule = {
  name: "no-workers-dev-in-protected-stack",
  description: "A protected stack does not also serve its Worker on workers.dev.",
  enforcementLevel: "advisory",
  check(resources, context) {
    if (!context.protect) return [];
    const on = [
      ...ofType(resources, TYPES.subdomain).filter((r) => r.inputs.enabled === true),
      ...ofType(resources, TYPES.worker).filter((r) => (r.inputs.subdomain as { enabled?: unknown } | undefined)?.enabled === true),
    ];
    return on.map((r) => ({
      resource: r.name,
      message: `workers.dev is on in a protected stack, a public URL that bypasses the zone's routes and WAF; set kv-worker-stack:workersDev: false in ${stackFile(context)}`,
    }));
  },
};

const freshCompatibilityDate: Rule = {
  name: "compatibility-date-within-12-months",
  description: "The Worker's compatibility date is at most 12 months old.",
  enforcementLevel: "advisory",
  check(resources, context) {
    const limit = new Date(context.today);
    limit.setUTCFullYear(limit.getUTCFullYear() - 1);
    return ofType(resources, TYPES.script, TYPES.version)
      .filter((r) => typeof r.inputs.compatibilityDate === "string" && new Date(r.inputs.compatibilityDate) < limit)
      .map((r) => ({
        resource: r.name,
        message: `compatibility date ${String(r.inputs.compatibilityDate)} is more than 12 months old; test on a newer date and set it (kv-worker-stack:compatibilityDate, or COMPATIBILITY_DATE in worker/src/contract.ts)`,
      }));
  },
};

export const RULES: readonly Rule[] = [
  kvBindingsOwnNamespaces,
  adminTokenSecret,
  noPlainTextSecrets,
  protectedNamespaces,
  productionBacksUpConfig,
  routesInZone,
  deploymentSplit,
  workersDevInProtectedStack,
  freshCompatibilityDate,
];

export interface Finding extends Violation {
  rule: string;
  enforcementLevel: EnforcementLevel;
}

/** Every rule over the stack's resources; mandatory findings first. */
export function evaluatePolicies(resources: readonly StackResource[], context: PolicyContext): Finding[] {
  const findings = RULES.flatMap((rule) =>
    rule.check(resources, context).map((v) => ({ ...v, rule: rule.name, enforcementLevel: rule.enforcementLevel })),
  );
  return [...findings.filter((f) => f.enforcementLevel === "mandatory"), ...findings.filter((f) => f.enforcementLevel !== "mandatory")];
}

export const formatFinding = (f: Finding) => `${f.enforcementLevel} ${f.rule}: ${f.resource}: ${f.message}`;
