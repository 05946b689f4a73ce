/**
 * Signs a user out everywhere: deletes all their sessions, one bounded page
 * per request (the Worker stays under KV's 1000 operations per invocation),
 * until the Worker reports the revocation complete.
 *
 *   npm run revoke -- --url <base> --user <userId> [--admin-token <token>]
 *
 * The token may also come from ADMIN_TOKEN or .dev.vars.
 */
import { parseArgs } from "node:util";
import { createApiClient } from "../client/index.ts";
import { SECRETS } from "../worker/src/contract";
import { CliError, apiFailure, drainPages, firstSet, isMain, parseFlags, readDevVars, runCommand } from "./lib/cli";

/** How long a deleted session may still validate in another location: KV's propagation bound. */
export const PROPAGATION_SECONDS = 60;

export interface RevokeOptions {
  url: string;
  userId: string;
  adminToken: string;
  log?: (line: string) => void;
}

export interface RevokeSummary {
  revoked: number;
  pages: number;
  /** Sessions listed after the last page: created while the revocation ran. */
  remaining: number;
  ms: number;
}

export async function revoke({ url, userId, adminToken, log = () => {} }: RevokeOptions): Promise<RevokeSummary> {
  const started = performance.now();
  const api = createApiClient({ baseUrl: url, adminToken });
  const { total: revoked, pages } = await drainPages(url, (cursor) => api.revokeUserSessions(userId, cursor), (page) => page.revoked, "revoked", log);
  // A session created during the revocation may have been listed after its page; say so rather than hide it.
  const listing = await api.listUserSessions(userId).catch(apiFailure(url));
  return { revoked, pages, remaining: listing.sessions.length, ms: performance.now() - started };
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({ options: { url: { type: "string" }, user: { type: "string" }, "admin-token": { type: "string" } } }),
  );
  if (!values.url || !values.user) throw new CliError("usage: npm run revoke -- --url <base> --user <userId> [--admin-token <token>]");
  if (!URL.canParse(values.url)) throw new CliError(`--url ${values.url} is not a URL`);
  const adminToken = firstSet(values["admin-token"], process.env[SECRETS.adminToken], readDevVars()[SECRETS.adminToken]);
  if (adminToken === undefined) throw new CliError("no admin token: pass --admin-token, set ADMIN_TOKEN, or put it in .dev.vars");

  console.log(`Revoking every session of user ${JSON.stringify(values.user)} at ${values.url}…`);
  const summary = await revoke({ url: values.url, userId: values.user, adminToken, log: (line) => console.log(line) });
  console.log(
    `Revoked ${summary.revoked} session${summary.revoked === 1 ? "" : "s"} in ${summary.pages} page${summary.pages === 1 ? "" : "s"}, ` +
      `${(summary.ms / 1000).toFixed(1)} s. They stop validating everywhere within ${PROPAGATION_SECONDS} s (KV propagation).`,
  );
  if (summary.remaining > 0) {
    console.log(`${summary.remaining} session(s) created while this ran are still listed; run it again to end them too.`);
  }
}

if (isMain(import.meta.url)) runCommand("revoke", main);
