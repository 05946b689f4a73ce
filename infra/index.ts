/**
 * The stack: KV namespaces (and their preview twins), the Worker with its
 * bindings, routes and domains, and the flags declared as code. Pulumi runs
 * the default export; the tests and `npm run plan` run it on the mock engine.
 */
import { join, relative } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { DIST, ensureBuilt } from "../scripts/build";
import { FeatureFlags } from "./components/feature-flags";
import { KvNamespaces } from "./components/kv-namespaces";
import { type Bundle, WorkerService } from "./components/worker-service";
import { readConfig } from "./config";
import { customDomainUrls, primaryUrl, workerVars, workersDevUrl } from "./stack-file";

/** Builds dist/ when it is missing or older than the Worker's sources, as `npm run build` does. */
async function currentBundle(): Promise<Bundle> {
  const manifest = await ensureBuilt((line) => pulumi.log.info(line));
  // Relative to the working directory, which Pulumi also gives the provider:
  // the same input on every machine, where an absolute path would differ.
  return { contentFile: relative(process.cwd(), join(DIST, manifest.mainModule)), sha256: manifest.sha256, mainModule: manifest.mainModule };
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
  new FeatureFlags("flags", { accountId: config.accountId, namespaceId: namespaces.ids.CONFIG, flags: config.flags });
  const worker = new WorkerService("worker", {
    accountId: config.accountId,
    workerName: config.workerName,
    bundle: built,
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    namespaceIds: namespaces.ids,
    vars: workerVars(config, built.sha256),
    adminToken: config.adminToken,
    workersDev: config.workersDev,
    zoneId: config.zoneId,
    zoneName: config.zoneName,
    routes: config.routes,
    customDomains: config.customDomains,
  });

  return {
    environment: config.environment,
    workerName: worker.scriptName,
    url: primaryUrl(config),
    workersDevUrl: workersDevUrl(config),
    customDomainUrls: customDomainUrls(config),
    bundleSha256: built.sha256,
    namespaceIds: namespaces.ids,
    previewNamespaceIds: namespaces.previewIds,
    adminToken: config.adminToken,
  };
}
