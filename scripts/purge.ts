/**
 * Deletes every cached entry under a key prefix, one page (up to 1000 keys,
 * one KV list) per request, until the Worker reports the purge complete.
 *
 *   npm run purge -- --url <base> --prefix <key prefix> [--admin-token <token>]
 *
 * The token may also come from ADMIN_TOKEN or .dev.vars.
 */
import { parseArgs } from "node:util";
import { createApiClient } from "../client/index.ts";
import { SECRETS } from "../worker/src/contract";
import { CliError, drainPages, firstSet, isMain, parseFlags, readDevVars, runCommand } from "./lib/cli";

export interface PurgeOptions {
  url: string;
  prefix: string;
  adminToken: string;
  log?: (line: string) => void;
}

export interface PurgeSummary {
  deleted: number;
  pages: number;
  ms: number;
}

export async function purge({ url, prefix, adminToken, log = () => {} }: PurgeOptions): Promise<PurgeSummary> {
  const started = performance.now();
  const api = createApiClient({ baseUrl: url, adminToken });
  const { total, pages } = await drainPages(url, (cursor) => api.purgeCache(prefix, cursor), (page) => page.deleted, "deleted", log);
  return { deleted: total, pages, ms: performance.now() - started };
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: { url: { type: "string" }, prefix: { type: "string" }, "admin-token": { type: "string" } },
      strict: true,
    }),
  );
  if (values.url === undefined) throw new CliError("missing --url <base URL of the Worker>");
  if (values.prefix === undefined) throw new CliError("missing --prefix <key prefix>, e.g. --prefix product:");
  const adminToken = firstSet(values["admin-token"], process.env[SECRETS.adminToken], readDevVars()[SECRETS.adminToken]);
  if (adminToken === undefined) throw new CliError("no admin token: pass --admin-token, set ADMIN_TOKEN, or put it in .dev.vars");

  console.log(`Purging cache keys with prefix ${JSON.stringify(values.prefix)} from ${values.url}…`);
  const summary = await purge({ url: values.url, prefix: values.prefix, adminToken, log: (line) => console.log(line) });
  console.log(
    `Purged ${summary.deleted} keys in ${summary.pages} page${summary.pages === 1 ? "" : "s"}, ${(summary.ms / 1000).toFixed(1)} s.`,
  );
}

if (isMain(import.meta.url)) runCommand("purge", main);
