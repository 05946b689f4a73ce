import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { KV_BINDINGS, type KvBinding, type RateLimitBinding, SECRETS, VERSION_METADATA_BINDING } from "../../worker/src/contract";
import { type Rollout, type TrafficShare, trafficSplit } from "../rollout";

/** The built Worker as the provider uploads it. */
export interface Bundle {
  /** dist/worker.js, relative to the working directory Pulumi starts the provider in. */
  contentFile: string;
  sha256: string;
  mainModule: string;
}

export interface WorkerServiceArgs {
  accountId: string;
  workerName: string;
  bundle: Bundle;
  compatibilityDate: string;
  compatibilityFlags: readonly string[];
  /** Production namespace IDs, by binding. */
  namespaceIds: Record<KvBinding, pulumi.Input<string>>;
  /** Plain-text vars, by name. */
  vars: Record<string, string>;
  /** Workers Rate Limiting bindings (contract's rateLimitBindings). */
  rateLimits: readonly RateLimitBinding[];
  /** A Pulumi secret (config.requireSecret), so the bindings reach the engine as a secret. */
  adminToken: pulumi.Output<string>;
  /** The admin token being rotated out, also a secret; no binding at all when undefined. */
  adminTokenPrevious?: pulumi.Output<string> | undefined;
  /** ADMIN_TOKENS (named tokens with scopes, JSON), a secret; no binding at all when undefined. */
  adminTokens?: pulumi.Output<string> | undefined;
  workersDev: boolean;
  /** The account's workers.dev subdomain, when known: gives the version's preview URL. */
  workersDevSubdomain: string | undefined;
  zoneId: string | undefined;
  zoneName: string | undefined;
  routes: string[];
  customDomains: string[];
  rollout: Rollout;
  /** R2 bucket bindings, binding name → bucket name (the backups bucket). */
  r2Buckets?: Record<string, pulumi.Input<string>>;
  /** Cron Triggers of the Worker's scheduled handler; none when empty. */
  crons?: readonly string[];
}

const MODULE_TYPE = "application/javascript+module";
/**
 * The code of the secrets version: it is never deployed, but a version must
 * have a main module. Answers 503 should it ever be reached.
 */
const SECRETS_MODULE = "secrets.js";
const SECRETS_MODULE_CODE = 'export default { fetch: () => new Response("not deployed", { status: 503 }) };\n';

/**
 * The Worker (name, workers.dev, observability), the immutable version this
 * update uploads, the deployment that splits traffic between it and the
 * stable version, and how requests reach the Worker: routes and custom
 * domains, by name.
 *
 * Versions are never deleted by Pulumi (`retainOnDelete`): a new bundle
 * replaces the version resource, and the version it replaces may still be the
 * stable version of the deployment, or the target of a rollback. Cloudflare
 * keeps the 100 most recent versions.
 */
export class WorkerService extends pulumi.ComponentResource {
  readonly scriptName: pulumi.Output<string>;
  /** The version this update uploaded. */
  readonly candidateVersionId: pulumi.Output<string>;
  /** The sha256 of the bundle the candidate runs, read back from its tag (so also right after a traffic-only update). */
  readonly candidateBundleSha256: pulumi.Output<string>;
  /** The deployment: versions and their share of traffic, biggest first. */
  readonly deployment: pulumi.Output<TrafficShare[]>;
  /** The version taking the majority of traffic. */
  readonly activeVersionId: pulumi.Output<string>;
  /** The candidate's own workers.dev preview URL, when workers.dev is on. */
  readonly versionUrl: pulumi.Output<string | undefined>;

  constructor(name: string, args: WorkerServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kv-worker-stack:cloudflare:WorkerService", name, {}, opts);
    const worker = new cloudflare.Worker(
      `${name}-script`,
      {
        accountId: args.accountId,
        name: args.workerName,
        // Preview URLs give each version its own workers.dev address; only where workers.dev is on.
        subdomain: { enabled: args.workersDev, previewsEnabled: args.workersDev },
        observability: { enabled: true, logs: { enabled: true, invocationLogs: true } },
      },
      { parent: this },
    );
    this.scriptName = worker.name;

    // ADMIN_TOKEN lives in a version of its own, replaced only when the token
    // changes; every release inherits it from there. Versions that share one
    // secret can be rolled back to each other; re-uploading the value with
    // each release could count as a secret change, which Cloudflare refuses to
    // roll back across (error 10220). The token stays a Pulumi secret.
    const secrets = new cloudflare.WorkerVersion(
      `${name}-secrets`,
      {
        accountId: args.accountId,
        workerId: worker.id,
        mainModule: SECRETS_MODULE,
        modules: [{ name: SECRETS_MODULE, contentType: MODULE_TYPE, contentBase64: Buffer.from(SECRETS_MODULE_CODE).toString("base64") }],
        compatibilityDate: args.compatibilityDate,
        bindings: [
          { type: "secret_text", name: SECRETS.adminToken, text: args.adminToken },
          ...(args.adminTokenPrevious ? [{ type: "secret_text", name: SECRETS.adminTokenPrevious, text: args.adminTokenPrevious }] : []),
          ...(args.adminTokens ? [{ type: "secret_text", name: SECRETS.adminTokens, text: args.adminTokens }] : []),
        ],
        annotations: { workersTag: "secrets", workersMessage: `Holds the admin tokens for the releases to inherit; never deployed` },
      },
      { parent: this, retainOnDelete: true },
    );

    const version = new cloudflare.WorkerVersion(
      `${name}-version`,
      {
        accountId: args.accountId,
        workerId: worker.id,
        mainModule: args.bundle.mainModule,
        // contentFile + contentSha256 rather than the code: the code stays out
        // of the state and the inputs, so a preview shows one hash changing
        // instead of a diff of minified code, and an unchanged (deterministic)
        // bundle leaves every input equal: no new version at all.
        modules: [{ name: args.bundle.mainModule, contentType: MODULE_TYPE, contentFile: args.bundle.contentFile, contentSha256: args.bundle.sha256 }],
        compatibilityDate: args.compatibilityDate,
        compatibilityFlags: [...args.compatibilityFlags],
        bindings: [
          ...KV_BINDINGS.map((binding) => ({ type: "kv_namespace", name: binding, namespaceId: args.namespaceIds[binding] })),
          ...Object.entries(args.r2Buckets ?? {}).map(([binding, bucketName]) => ({ type: "r2_bucket", name: binding, bucketName })),
          ...Object.entries(args.vars).map(([varName, text]) => ({ type: "plain_text", name: varName, text })),
          { type: "inherit", name: SECRETS.adminToken, versionId: secrets.id },
          ...(args.adminTokenPrevious ? [{ type: "inherit", name: SECRETS.adminTokenPrevious, versionId: secrets.id }] : []),
          ...(args.adminTokens ? [{ type: "inherit", name: SECRETS.adminTokens, versionId: secrets.id }] : []),
          { type: "version_metadata", name: VERSION_METADATA_BINDING },
          ...args.rateLimits.map(({ name, namespaceId, limit, period }) => ({ type: "ratelimit", name, namespaceId, simple: { limit, period } })),
        ],
        // The tag is what /health reports as versionTag: the bundle it runs.
        annotations: { workersTag: args.bundle.sha256, workersMessage: `${args.workerName}: bundle sha256 ${args.bundle.sha256}` },
      },
      { parent: this, retainOnDelete: true },
    );
    this.candidateVersionId = version.id;
    this.candidateBundleSha256 = version.annotations.apply((annotations) => annotations.workersTag ?? args.bundle.sha256);
    this.deployment = version.id.apply((id) => trafficSplit(args.rollout, id));
    this.activeVersionId = this.deployment.apply((shares) => shares[0]!.versionId);

    const deployment = new cloudflare.WorkersDeployment(
      `${name}-deployment`,
      {
        accountId: args.accountId,
        scriptName: worker.name,
        strategy: "percentage",
        versions: this.deployment.apply((shares) => shares.map((share) => ({ versionId: share.versionId, percentage: share.percent }))),
        annotations: { workersMessage: `new version at ${args.rollout.percent} %` },
      },
      { parent: this },
    );

    this.versionUrl = pulumi
      .all([version.id, version.urls])
      .apply(([id, urls]) => (args.workersDev ? (urls?.[0] ?? previewUrl(id, args.workerName, args.workersDevSubdomain)) : undefined));

    // Routes and domains wait for a deployment: before it the Worker has no version to serve.
    const reach = { parent: this, dependsOn: [deployment] };
    for (const pattern of args.routes) {
      if (args.zoneId === undefined) throw new Error("routes need a zoneId"); // stack-file refuses this config first
      new cloudflare.WorkersRoute(`${name}-route-${pattern}`, { zoneId: args.zoneId, pattern, script: worker.name }, reach);
    }
    for (const hostname of args.customDomains) {
      new cloudflare.WorkersCustomDomain(
        `${name}-domain-${hostname}`,
        {
          accountId: args.accountId,
          hostname,
          service: worker.name,
          ...(args.zoneId ? { zoneId: args.zoneId } : { zoneName: args.zoneName }),
        },
        reach,
      );
    }
    // Crons belong to the script, not a version: they fire on whatever is deployed.
    if (args.crons?.length) {
      new cloudflare.WorkersCronTrigger(
        `${name}-cron`,
        { accountId: args.accountId, scriptName: worker.name, schedules: args.crons.map((cron) => ({ cron })) },
        reach,
      );
    }
    this.registerOutputs({
      scriptName: this.scriptName,
      candidateVersionId: this.candidateVersionId,
      activeVersionId: this.activeVersionId,
      deployment: this.deployment,
      versionUrl: this.versionUrl,
    });
  }
}

/**
 * A version's preview URL, `https://<first 8 characters of its id>-<worker>.<subdomain>.workers.dev`
 * (Cloudflare's documented format), for when the provider reports none.
 */
function previewUrl(versionId: string, workerName: string, subdomain: string | undefined): string | undefined {
  return subdomain === undefined ? undefined : `https://${versionId.slice(0, 8)}-${workerName}.${subdomain}.workers.dev`;
}
