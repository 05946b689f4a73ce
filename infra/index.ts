/**
 * The stack: KV namespaces (and their preview twins), the Worker with its
 * version, deployment, routes, domains and cron triggers, the flags declared
 * as code, and the R2 bucket KV is backed up to.
 * Pulumi runs the default export; the tests and `npm run plan` run it on the
 * mock engine.
 */
import { join, relative } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { DIST, NO_BUILD_ENV, ensureBuilt, readManifest } from "../worker/build";
import { rateLimitBindings } from "../worker/src/contract";
import { BACKUPS_BINDING } from "../worker/src/backup/format";
import { BackupBucket } from "./components/backup-bucket";
import { FeatureFlags } from "./components/feature-flags";
import { KvNamespaces } from "./components/kv-namespaces";
import { type Bundle, WorkerService } from "./components/worker-service";
import { readConfig } from "./config";
import { backupCrons, customDomainUrls, primaryUrl, workerVars, workersDevUrl } from "./stack-file";

/** Builds dist/ when it is missing or older than the Worker's sources, as `npm run build` does. */
async function currentBundle(): Promise<Bundle> {
  // A traffic-only update (only the deployment is targeted) never uploads the
  // version, which the state keeps: it reads dist/ as it is, built or not.
  const manifest = process.env[NO_BUILD_ENV] ? await readManifest() : await ensureBuilt((line) => pulumi.log.info(line));
  const mainModule = manifest?.mainModule ?? "worker.js";
  // Relative to the working directory, which Pulumi also gives the provider:
  // the same input on every machine, where an absolute path would differ.
  return { contentFile: relative(process.cwd(), join(DIST, mainModule)), sha256: manifest?.sha256 ?? "not-built", mainModule };
}

export default async function program(bundle?: Bundle) {
  const config = readConfig();
  const built = bundle ?? (await currentBundle());

  const namespaces = new KvNamespaces("kv", {
    accountId: config.accountId,
    titles: config.namespaceTitles,
    protect: config.protect,
    adopted: config.adoptedNamespaces,
  });
  new FeatureFlags("flags", { accountId: config.accountId, namespaceId: namespaces.ids.CONFIG, flags: config.flags, evaluators: config.evaluators });
  const backups = new BackupBucket("backups", {
    accountId: config.accountId,
    bucketName: config.backupBucketName,
    stack: config.stack,
    backups: config.backups,
    protect: config.protect,
  });
  const worker = new WorkerService("worker", {
    accountId: config.accountId,
    workerName: config.workerName,
    bundle: built,
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    namespaceIds: namespaces.ids,
    vars: workerVars(config, built.sha256),
    rateLimits: rateLimitBindings(config.rateLimits),
    adminToken: config.adminToken,
    adminTokenPrevious: config.adminTokenPrevious,
    adminTokens: config.adminTokens,
    workersDev: config.workersDev,
    workersDevSubdomain: config.workersDevSubdomain,
    rollout: config.rollout,
    zoneId: config.zoneId,
    zoneName: config.zoneName,
    routes: config.routes,
    customDomains: config.customDomains,
    r2Buckets: { [BACKUPS_BINDING]: backups.bucketName },
    crons: backupCrons(config),
  });

  const devUrl = workersDevUrl(config);
  return {
    environment: config.environment,
    workerName: worker.scriptName,
    url: primaryUrl(config),
    // Left out, not undefined, without workers.dev: Pulumi warns about an undefined output.
    ...(devUrl === undefined ? {} : { workersDevUrl: devUrl }),
    customDomainUrls: customDomainUrls(config),
    bundleSha256: worker.candidateBundleSha256,
    activeVersionId: worker.activeVersionId,
    candidateVersionId: worker.candidateVersionId,
    deployment: worker.deployment,
    // The version a rollout falls back to; kept after 100 % as the rollback target.
    ...(config.rollout.stableVersionId === undefined ? {} : { stableVersionId: config.rollout.stableVersionId }),
    ...(config.workersDev ? { versionUrl: worker.versionUrl } : {}),
    namespaceIds: namespaces.ids,
    previewNamespaceIds: namespaces.previewIds,
    backupBucket: backups.bucketName,
    adminToken: config.adminToken,
  };
}
