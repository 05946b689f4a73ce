/**
 * Starts a backup of the stack's configured namespaces (KV → R2) now, and
 * with --wait drives it to the end, one slice (at most 900 KV and R2
 * operations) per request; without --wait the Worker's continuation cron
 * finishes a run too large for one slice.
 *
 *   npm run backup -- --url <base> [--admin-token <token>] [--wait]
 *
 * The token may also come from ADMIN_TOKEN or .dev.vars.
 */
import { parseArgs } from "node:util";
import { type ApiClient, ApiResponseError, createApiClient } from "../client/index.ts";
import { CONTINUE_CRON } from "../worker/src/backup/format";
import { SECRETS } from "../worker/src/contract";
import { apiFailure, CliError, firstSet, isMain, parseFlags, readDevVars, runCommand } from "./lib/cli";

type Slice = Awaited<ReturnType<ApiClient["startBackup"]>>;
type Run = NonNullable<Slice["run"]>;

export interface BackupOptions {
  url: string;
  adminToken: string;
  wait?: boolean;
  /** Pause before asking again while another invocation (the cron) holds the run. */
  busyPauseMs?: number;
  log?: (line: string) => void;
}

export interface BackupSummary {
  backupId: string;
  /** Undefined when the run was left to the cron (no --wait). */
  run: Run | undefined;
  slices: number;
  ms: number;
}

export async function backup({ url, adminToken, wait = false, busyPauseMs = 2000, log = () => {} }: BackupOptions): Promise<BackupSummary> {
  const started = performance.now();
  const api = createApiClient({ baseUrl: url, adminToken, timeoutMs: 60_000 });
  let slice = await api.startBackup().catch(async (error: unknown) => {
    // A run already in progress (the cron's, or one interrupted): with --wait, drive that one to the end.
    if (wait && error instanceof ApiResponseError && error.code === "backup_in_progress") {
      log(`a backup is already in progress (${error.detail}); continuing it`);
      return api.continueBackup().catch(apiFailure(url));
    }
    return apiFailure(url)(error);
  });
  if (slice.status === "idle") throw new CliError("the backup in progress finished meanwhile; run npm run backup again for a new one");
  const backupId = slice.backupId!;
  let slices = 1;
  log(progress(slices, slice));
  while (wait && slice.status !== "complete") {
    if (slice.status === "busy") await new Promise((resolve) => setTimeout(resolve, busyPauseMs));
    slice = await api.continueBackup().catch(apiFailure(url));
    slices += 1;
    // Idle: another invocation (the cron) finished it between two of ours.
    if (slice.status === "idle") slice = { status: "complete", backupId, ops: 0, run: await api.getBackup(backupId).catch(apiFailure(url)) };
    else if (slice.backupId !== backupId) throw new CliError(`backup ${backupId} is no longer in progress; ${slice.backupId} is`);
    log(progress(slices, slice));
  }
  return { backupId, run: slice.status === "complete" ? slice.run : undefined, slices, ms: performance.now() - started };
}

function progress(n: number, slice: Slice): string {
  if (slice.status === "busy") return `slice ${n}: another invocation holds backup ${slice.backupId}; waiting`;
  const namespaces = slice.run?.namespaces ?? slice.inProgress?.namespaces ?? [];
  const done = namespaces.map((ns) => `${ns.namespace} ${ns.status} ${ns.keys} keys`).join(", ");
  return `slice ${n}: backup ${slice.backupId} ${slice.status} (${done}; ${slice.ops} KV/R2 operations)`;
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: { url: { type: "string" }, "admin-token": { type: "string" }, wait: { type: "boolean", default: false } },
      strict: true,
    }),
  );
  if (values.url === undefined) throw new CliError("missing --url <base URL of the Worker>");
  const adminToken = firstSet(values["admin-token"], process.env[SECRETS.adminToken], readDevVars()[SECRETS.adminToken]);
  if (adminToken === undefined) throw new CliError("no admin token: pass --admin-token, set ADMIN_TOKEN, or put it in .dev.vars");

  console.log(`Starting a backup of ${values.url}${values.wait ? " and waiting for it" : ""}…`);
  const summary = await backup({ url: values.url, adminToken, wait: values.wait, log: (line) => console.log(line) });
  const seconds = (summary.ms / 1000).toFixed(1);
  if (!summary.run) {
    console.log(`Backup ${summary.backupId} started; the Worker's continuation cron (${CONTINUE_CRON}) finishes it, or run again with --wait. ${seconds} s.`);
    return;
  }
  for (const ns of summary.run.namespaces) {
    if (ns.status === "refused") console.log(`warning: ${ns.namespace} was not backed up: ${ns.reason}`);
  }
  const copied = summary.run.namespaces.filter((ns) => ns.status === "complete");
  console.log(
    `Backup ${summary.backupId} complete: ${copied.map((ns) => `${ns.namespace} ${ns.keys} keys in ${ns.parts} part${ns.parts === 1 ? "" : "s"}`).join(", ") || "no namespace"}` +
      `${copied.length < summary.run.namespaces.length ? ` (${summary.run.namespaces.length - copied.length} refused)` : ""}; ${summary.slices} slice${summary.slices === 1 ? "" : "s"}, ${seconds} s.`,
  );
}

if (isMain(import.meta.url)) runCommand("backup", main);
