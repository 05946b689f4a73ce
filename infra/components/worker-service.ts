import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { KV_BINDINGS, type KvBinding, SECRETS } from "../../worker/src/contract";

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
  /** A Pulumi secret (config.requireSecret), so the bindings reach the engine as a secret. */
  adminToken: pulumi.Output<string>;
  /** The admin token being rotated out, also a secret; no binding at all when undefined. */
  adminTokenPrevious?: pulumi.Output<string> | undefined;
  workersDev: boolean;
  zoneId: string | undefined;
  zoneName: string | undefined;
  routes: string[];
  customDomains: string[];
}

/** The Worker script, its bindings, and how requests reach it: routes, custom domains, workers.dev. */
export class WorkerService extends pulumi.ComponentResource {
  readonly scriptName: pulumi.Output<string>;

  constructor(name: string, args: WorkerServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kv-worker-stack:cloudflare:WorkerService", name, {}, opts);
    const script = new cloudflare.WorkersScript(
      `${name}-script`,
      {
        accountId: args.accountId,
        scriptName: args.workerName,
        mainModule: args.bundle.mainModule,
        // contentFile + contentSha256 rather than `content`: the code stays out
        // of the state and the inputs, so a preview shows one hash changing
        // instead of a diff of minified code, and an unchanged (deterministic)
        // bundle leaves every input equal: no diff at all.
        contentFile: args.bundle.contentFile,
        contentSha256: args.bundle.sha256,
        compatibilityDate: args.compatibilityDate,
        compatibilityFlags: [...args.compatibilityFlags],
        bindings: [
          ...KV_BINDINGS.map((binding) => ({ type: "kv_namespace", name: binding, namespaceId: args.namespaceIds[binding] })),
          ...Object.entries(args.vars).map(([varName, text]) => ({ type: "plain_text", name: varName, text })),
          { type: "secret_text", name: SECRETS.adminToken, text: args.adminToken },
          ...(args.adminTokenPrevious ? [{ type: "secret_text", name: SECRETS.adminTokenPrevious, text: args.adminTokenPrevious }] : []),
        ],
        observability: { enabled: true, logs: { enabled: true, invocationLogs: true } },
      },
      { parent: this },
    );
    this.scriptName = script.scriptName;

    new cloudflare.WorkersScriptSubdomain(
      `${name}-workers-dev`,
      { accountId: args.accountId, scriptName: script.scriptName, enabled: args.workersDev, previewsEnabled: false },
      { parent: this },
    );
    for (const pattern of args.routes) {
      if (args.zoneId === undefined) throw new Error("routes need a zoneId"); // stack-file refuses this config first
      new cloudflare.WorkersRoute(
        `${name}-route-${pattern}`,
        { zoneId: args.zoneId, pattern, script: script.scriptName },
        { parent: this },
      );
    }
    for (const hostname of args.customDomains) {
      new cloudflare.WorkersCustomDomain(
        `${name}-domain-${hostname}`,
        {
          accountId: args.accountId,
          hostname,
          service: script.scriptName,
          ...(args.zoneId ? { zoneId: args.zoneId } : { zoneName: args.zoneName }),
        },
        { parent: this },
      );
    }
    this.registerOutputs({ scriptName: this.scriptName });
  }
}
