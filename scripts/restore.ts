/**
 * Restores KV namespaces from a backup in R2: by default a dry run that
 * reports what would change (keys added, changed, deleted, with a sample);
 * with --apply it makes each namespace equal to the backup, except flags
 * declared as code. One slice (at most 900 KV and R2 operations) per request,
 * until the Worker reports the namespace complete. Safe to rerun: an
 * interrupted apply run again ends in the same state.
 *
 *   npm run restore -- --url <base> --from <backup id>|latest [--namespace CONFIG] [--apply] [--admin-token <token>]
 */
import { parseArgs } from "node:util";
import { type ApiClient, createApiClient } from "../client/index.ts";
import { SECRETS } from "../worker/src/contract";
import { apiFailure, CliError, firstSet, isMain, parseFlags, readDevVars, runCommand } from "./lib/cli";

type Slice = Awaited<ReturnType<ApiClient["restoreBackup"]>>;
type Namespace = Slice["namespace"];
const OUTCOMES = ["added", "changed", "deleted", "unchanged", "managed", "expired"] as const;
const SAMPLE = 10;

export interface RestoreOptions {
  url: string;
  adminToken: string;
  from: string;
  namespace?: string | undefined;
  apply?: boolean;
  log?: (line: string) => void;
}

export interface NamespaceRestore {
  namespace: Namespace;
  counts: Slice["counts"];
  sample: Slice["sample"];
  slices: number;
}

export interface RestoreSummary {
  backupId: string;
  apply: boolean;
  namespaces: NamespaceRestore[];
  ms: number;
}

export async function restore({ url, adminToken, from, namespace, apply = false, log = () => {} }: RestoreOptions): Promise<RestoreSummary> {
  const started = performance.now();
  const api = createApiClient({ baseUrl: url, adminToken, timeoutMs: 60_000 });
  const run = await api.getBackup(from).catch(apiFailure(url));
  const copied = run.namespaces.filter((ns) => ns.status === "complete").map((ns) => ns.namespace);
  let targets: Namespace[] = copied;
  if (namespace !== undefined) {
    if (!copied.includes(namespace as Namespace)) {
      throw new CliError(`backup ${run.backupId} holds no copy of ${namespace}; it holds ${copied.join(", ") || "none"}`);
    }
    targets = [namespace as Namespace];
  }
  if (targets.length === 0) throw new CliError(`backup ${run.backupId} holds no namespace to restore`);
  log(`backup ${run.backupId} (started ${run.startedAt}, ${run.trigger}): restoring ${targets.join(", ")}${apply ? "" : " as a dry run"}`);

  const namespaces: NamespaceRestore[] = [];
  for (const target of targets) {
    const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Slice["counts"];
    const sample: Slice["sample"] = { added: [], changed: [], deleted: [], managed: [], expired: [] };
    let cursor: string | undefined;
    let slices = 0;
    for (;;) {
      const slice = await api.restoreBackup(run.backupId, { namespace: target, apply, cursor }).catch(apiFailure(url));
      slices += 1;
      for (const outcome of OUTCOMES) counts[outcome] += slice.counts[outcome];
      for (const outcome of Object.keys(sample) as (keyof Slice["sample"])[]) {
        sample[outcome].push(...slice.sample[outcome].slice(0, SAMPLE - sample[outcome].length));
      }
      log(`${target} slice ${slices}: ${describe(slice.counts, apply)}`);
      if (slice.complete) break;
      if (slice.cursor === undefined) throw new CliError(`${new URL(url).origin} answered complete: false without a cursor`);
      cursor = slice.cursor;
    }
    namespaces.push({ namespace: target, counts, sample, slices });
  }
  return { backupId: run.backupId, apply, namespaces, ms: performance.now() - started };
}

function describe(counts: Slice["counts"], apply: boolean): string {
  const verb = apply ? { added: "added", changed: "changed", deleted: "deleted" } : { added: "to add", changed: "to change", deleted: "to delete" };
  return (
    `${counts.added} ${verb.added}, ${counts.changed} ${verb.changed}, ${counts.deleted} ${verb.deleted}, ${counts.unchanged} unchanged` +
    `, ${counts.managed} managed as code (kept), ${counts.expired} expired (skipped)`
  );
}

async function main(): Promise<void> {
  const { values } = parseFlags(() =>
    parseArgs({
      options: {
        url: { type: "string" },
        "admin-token": { type: "string" },
        from: { type: "string" },
        namespace: { type: "string" },
        apply: { type: "boolean", default: false },
      },
      strict: true,
    }),
  );
  if (values.url === undefined) throw new CliError("missing --url <base URL of the Worker>");
  if (values.from === undefined) throw new CliError("missing --from <backup id> or --from latest (npm run backup lists none? run one first)");
  const adminToken = firstSet(values["admin-token"], process.env[SECRETS.adminToken], readDevVars()[SECRETS.adminToken]);
  if (adminToken === undefined) throw new CliError("no admin token: pass --admin-token, set ADMIN_TOKEN, or put it in .dev.vars");

  console.log(`${values.apply ? "Restoring" : "Dry run: restoring"} from backup ${values.from} to ${values.url}…`);
  const summary = await restore({ ...values, url: values.url, from: values.from, adminToken, log: (line) => console.log(line) });
  for (const ns of summary.namespaces) {
    console.log(`${ns.namespace}: ${describe(ns.counts, summary.apply)} (${ns.slices} slice${ns.slices === 1 ? "" : "s"})`);
    for (const outcome of ["added", "changed", "deleted", "managed"] as const) {
      if (ns.sample[outcome].length > 0) console.log(`  ${outcome}: ${ns.sample[outcome].join(", ")}${ns.counts[outcome] > ns.sample[outcome].length ? ", …" : ""}`);
    }
  }
  const seconds = (summary.ms / 1000).toFixed(1);
  console.log(
    summary.apply
      ? `Restored ${summary.namespaces.map((ns) => ns.namespace).join(", ")} from backup ${summary.backupId}, ${seconds} s.`
      : `Dry run of backup ${summary.backupId}: nothing was changed. Run again with --apply to make these changes. ${seconds} s.`,
  );
}

if (isMain(import.meta.url)) runCommand("restore", main);
