import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import type { BackupsConfig } from "../../worker/src/backup/config";
import { runsPrefix } from "../../worker/src/backup/format";

export interface BackupBucketArgs {
  accountId: string;
  /** Physical name (stack-file's backupBucketName). */
  bucketName: string;
  /** Every object is under `<stack>/`. */
  stack: string;
  backups: BackupsConfig;
  /** Protect and retain the bucket, as the stack does its namespaces. */
  protect: boolean;
}

const DAY_SECONDS = 86_400;

/**
 * The R2 bucket the Worker's scheduled handler writes KV backups to, with a
 * lifecycle rule that deletes them after `retainDays` and, with `lock`, a
 * bucket lock that keeps anyone (a leaked token, a wrong script) from deleting
 * or overwriting a backup before then. The lock covers the backups and the
 * run records, not `<stack>/_state.json`, which each slice rewrites.
 */
export class BackupBucket extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;

  constructor(name: string, args: BackupBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kv-worker-stack:cloudflare:BackupBucket", name, {}, opts);
    const keep = args.protect ? { protect: true, retainOnDelete: true } : {};
    const bucket = new cloudflare.R2Bucket(`${name}-bucket`, { accountId: args.accountId, name: args.bucketName }, { parent: this, ...keep });
    this.bucketName = bucket.name;
    const retainSeconds = args.backups.retainDays * DAY_SECONDS;

    new cloudflare.R2BucketLifecycle(
      `${name}-lifecycle`,
      {
        accountId: args.accountId,
        bucketName: bucket.name,
        rules: [
          {
            id: `${args.stack}-retain-${args.backups.retainDays}-days`,
            enabled: true,
            conditions: { prefix: `${args.stack}/` },
            deleteObjectsTransition: { condition: { type: "Age", maxAge: retainSeconds } },
            abortMultipartUploadsTransition: { condition: { type: "Age", maxAge: DAY_SECONDS } },
          },
        ],
      },
      { parent: this },
    );

    if (args.backups.lock) {
      const prefixes = [...args.backups.namespaces.map((ns) => `${args.stack}/${ns}/`), runsPrefix(args.stack)];
      new cloudflare.R2BucketLock(
        `${name}-lock`,
        {
          accountId: args.accountId,
          bucketName: bucket.name,
          rules: prefixes.map((prefix) => ({
            id: `lock-${prefix.replace(/[^A-Za-z0-9]+/g, "-").replace(/-$/, "")}`,
            enabled: true,
            prefix,
            condition: { type: "Age", maxAgeSeconds: retainSeconds },
          })),
        },
        { parent: this },
      );
    }
    this.registerOutputs({ bucketName: this.bucketName });
  }
}
