/**
 * The backup engine's entry points for a Worker: its bindings and settings
 * from the environment, and what a cron tick does. The scheduled handler and
 * the admin routes build their dependencies here, each for its own
 * invocation: nothing is kept between them (no promise crosses invocations).
 */
import { KV_BINDINGS, type KvBinding } from "../contract.ts";
import type { Env } from "../env.ts";
import { type BackupDeps, continueBackup, type SliceResult, startBackup } from "./backup.ts";
import { namespacesFrom } from "./format.ts";
import { BackupError } from "./ops.ts";

/** What a stack is called in the bucket when ENVIRONMENT is unset. */
const DEFAULT_STACK = "local";

export type BackupOptions = Pick<BackupDeps, "now" | "opsBudget" | "pageSize" | "timeoutMs">;

/** The engine's dependencies from a Worker's bindings; a 503 when no bucket is bound. */
export function backupDeps(env: Env, options: BackupOptions = {}): BackupDeps {
  if (!env.BACKUPS) throw new BackupError(503, "unavailable", "backups are not configured: the Worker has no BACKUPS bucket binding");
  const kv = Object.fromEntries(KV_BINDINGS.map((b) => [b, env[b]])) as Record<KvBinding, KVNamespace>;
  return { kv, bucket: env.BACKUPS, stack: env.ENVIRONMENT || DEFAULT_STACK, ...options };
}

export const configuredNamespaces = (env: Env) => namespacesFrom(env.BACKUP_NAMESPACES);

/**
 * A cron tick. The backup schedule's tick starts a run (or, if the last one
 * is still going, goes on with it); any other tick (the continuation trigger)
 * goes on with a run in progress and otherwise does nothing but one R2 read.
 */
export async function onCron(cron: string, env: Env, options: BackupOptions = {}): Promise<SliceResult> {
  const deps = backupDeps(env, options);
  let result: SliceResult;
  if (cron.trim() === env.BACKUP_SCHEDULE?.trim() && configuredNamespaces(env).length === 0) {
    // `backups.namespaces: []` turns backups off; a tick is then nothing to fail over.
    console.warn("backup: no namespaces are configured (BACKUP_NAMESPACES is empty); nothing to back up");
    result = await continueBackup(deps);
  } else if (cron.trim() === env.BACKUP_SCHEDULE?.trim()) {
    try {
      result = await startBackup(deps, configuredNamespaces(env), "cron");
    } catch (error) {
      if (!(error instanceof BackupError && error.code === "backup_in_progress")) throw error;
      console.warn(`backup: ${error.message}; going on with it instead of starting another`);
      result = await continueBackup(deps);
    }
  } else {
    result = await continueBackup(deps);
  }
  if (result.status !== "idle") console.log(`backup ${result.backupId}: ${result.status} after ${result.ops} KV/R2 operations (cron ${cron})`);
  return result;
}
