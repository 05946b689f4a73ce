import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { encodeEvaluator, encodeFlag, evaluatorKey, type FlagDefinition, flagKey } from "../../worker/src/contract";

export interface FeatureFlagsArgs {
  accountId: string;
  /** The CONFIG namespace the Worker reads flags from. */
  namespaceId: pulumi.Input<string>;
  flags: Record<string, FlagDefinition>;
  /** Shared rules (`$evaluators`), one KV entry each: `evaluator:<name>`. */
  evaluators?: Record<string, Record<string, unknown>>;
}

/**
 * Flags declared as code: one KV entry each, encoded by the Worker's own codec
 * (value and list metadata), so a flag change shows in the infra diff; and
 * each shared evaluator once, as `evaluator:<name>` (resource `<name>-$<evaluator>`,
 * a `$` no flag name can hold).
 */
export class FeatureFlags extends pulumi.ComponentResource {
  constructor(name: string, args: FeatureFlagsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kv-worker-stack:cloudflare:FeatureFlags", name, {}, opts);
    for (const [flagName, flag] of Object.entries(args.flags)) {
      const { value, metadata } = encodeFlag(flag);
      new cloudflare.WorkersKv(
        `${name}-${flagName}`,
        {
          accountId: args.accountId,
          namespaceId: args.namespaceId,
          keyName: flagKey(flagName),
          value,
          metadata: JSON.stringify(metadata),
        },
        { parent: this },
      );
    }
    for (const [evaluatorName, rule] of Object.entries(args.evaluators ?? {})) {
      const { value, metadata } = encodeEvaluator(rule);
      new cloudflare.WorkersKv(
        `${name}-$${evaluatorName}`,
        {
          accountId: args.accountId,
          namespaceId: args.namespaceId,
          keyName: evaluatorKey(evaluatorName),
          value,
          metadata: JSON.stringify(metadata),
        },
        { parent: this },
      );
    }
    this.registerOutputs({});
  }
}
