/**
 * The backup engine: snapshots KV namespaces to R2 as NDJSON parts with a
 * manifest. A run too large for one invocation keeps its cursor in R2
 * (`<stack>/_state.json`) and goes on at the next slice, from the scheduled
 * handler's continuation trigger or from an admin request. No Hono, no
 * request types: the scheduled handler, the admin routes and the tests call
 * it alike.
 */
import { KEY_PREFIX, type KvBinding, SESSION_ID_PATTERN } from "../contract.ts";
import {
  type BackupRecord,
  type BackupState,
  encodeRecord,
  manifestPath,
  type NamespaceProgress,
  type NamespaceManifest,
  newBackupId,
  partName,
  partPath,
  runPath,
  type RunRecord,
  runsPrefix,
  sha256Hex,
  statePath,
  type Trigger,
} from "./format.ts";
import { BackupError, BULK_GET_MAX, DEFAULT_OPS_BUDGET, DEFAULT_PAGE_SIZE, OpsBudget, pageReserve } from "./ops.ts";

export interface BackupDeps {
  kv: Readonly<Record<KvBinding, KVNamespace>>;
  bucket: R2Bucket;
  /** The stack's name: every object is under `<stack>/`. */
  stack: string;
  now?: () => number;
  /** Operations (KV and R2) one slice may make; at most 1000. */
  opsBudget?: number;
  /** Keys per KV list page, and so per part (at most 1000). */
  pageSize?: number;
  /** Deadline of one KV or R2 operation. */
  timeoutMs?: number;
}

/** How long one slice owns a run; another slice finding the lease held does nothing. */
export const LEASE_MS = 120_000;

export type SliceResult =
  | { status: "idle"; ops: number }
  | { status: "busy"; backupId: string; ops: number }
  | { status: "running"; backupId: string; state: BackupState; ops: number }
  | { status: "complete"; backupId: string; run: RunRecord; ops: number };

/**
 * Starts a run of `namespaces` and makes its first slice. Refused (409) while
 * another run is in progress: finish or wait for it.
 */
export async function startBackup(deps: BackupDeps, namespaces: readonly KvBinding[], trigger: Trigger): Promise<SliceResult> {
  if (namespaces.length === 0) throw new BackupError(409, "backups_not_configured", "no namespaces are configured for backup (BACKUP_NAMESPACES)");
  const now = deps.now ?? Date.now;
  const ops = new OpsBudget(deps.opsBudget ?? DEFAULT_OPS_BUDGET, deps.timeoutMs);
  const current = await ops.call("BACKUPS.get", () => readJson<BackupState>(deps.bucket, statePath(deps.stack)));
  if (current) throw new BackupError(409, "backup_in_progress", `backup ${current.backupId} is still in progress; continue it or wait for it`);
  const state: BackupState = {
    backupId: newBackupId(now()),
    trigger,
    startedAt: new Date(now()).toISOString(),
    leaseUntil: 0,
    invocations: 0,
    namespaces: namespaces.map((namespace) => ({ namespace, status: "pending", keys: 0, bytes: 0, parts: [] })),
  };
  // Two starts in the same instant both write; the slice's lease (a conditional write) lets only one of them go on.
  await ops.call("BACKUPS.put", () => deps.bucket.put(statePath(deps.stack), JSON.stringify(state)));
  return sliceWith(deps, ops);
}

/** One slice of the run in progress, if there is one and no other slice holds it. */
export const continueBackup = (deps: BackupDeps) => sliceWith(deps, new OpsBudget(deps.opsBudget ?? DEFAULT_OPS_BUDGET, deps.timeoutMs));

async function sliceWith(deps: BackupDeps, ops: OpsBudget): Promise<SliceResult> {
  const { bucket, stack } = deps;
  const now = deps.now ?? Date.now;
  const pageSize = deps.pageSize ?? DEFAULT_PAGE_SIZE;
  const object = await ops.call("BACKUPS.get", () => bucket.get(statePath(stack)));
  if (!object) return { status: "idle", ops: ops.used };
  const state = await object.json<BackupState>();
  if (state.leaseUntil > now()) return { status: "busy", backupId: state.backupId, ops: ops.used };

  // Take the lease: only the slice whose write matches the state it read goes on.
  let etag = object.etag;
  const save = async (leaseUntil: number) => {
    state.leaseUntil = leaseUntil;
    const written = await ops.call("BACKUPS.put", () =>
      bucket.put(statePath(stack), JSON.stringify(state), { onlyIf: { etagMatches: etag } }),
    );
    if (!written) throw new BackupError(409, "backup_in_progress", `backup ${state.backupId} was taken over by another invocation`);
    etag = written.etag;
  };
  state.invocations += 1;
  try {
    await save(now() + LEASE_MS);
  } catch (error) {
    if (error instanceof BackupError && error.status === 409) return { status: "busy", backupId: state.backupId, ops: ops.used };
    throw error;
  }
  const sliceStarted = now();
  const reserve = pageReserve(pageSize);

  try {
    for (const ns of state.namespaces) {
      if (ns.status === "complete" || ns.status === "refused") continue;
      ns.status = "running";
      ns.startedAt ??= new Date(now()).toISOString();
      const kv = deps.kv[ns.namespace];
      for (;;) {
        if (ops.remaining < reserve || now() - sliceStarted > LEASE_MS / 2) {
          await save(0);
          return { status: "running", backupId: state.backupId, state, ops: ops.used };
        }
        const page = await ops.call(`${ns.namespace}.list`, () => kv.list({ limit: pageSize, ...(ns.cursor ? { cursor: ns.cursor } : {}) }));
        const records = await readValues(ops, ns.namespace, kv, page.keys);
        const refusal = ns.namespace === "SESSIONS" ? rawSessionCredential(records) : undefined;
        if (refusal) {
          ns.status = "refused";
          ns.reason = refusal;
          ns.finishedAt = new Date(now()).toISOString();
          delete ns.cursor;
          console.error(`backup ${state.backupId}: ${ns.namespace} refused: ${refusal}`);
          await save(now() + LEASE_MS);
          break;
        }
        if (records.length > 0) {
          const text = `${records.map(encodeRecord).join("\n")}\n`;
          const bytes = new TextEncoder().encode(text) as Uint8Array<ArrayBuffer>;
          const sha256 = await sha256Hex(bytes);
          const name = await writePart(ops, bucket, (n) => partPath(stack, ns.namespace, state.backupId, partName(n)), ns, bytes, sha256);
          ns.parts.push({ name, keys: records.length, bytes: bytes.byteLength, sha256, firstKey: records[0]!.key, lastKey: records.at(-1)!.key });
          ns.keys += records.length;
          ns.bytes += bytes.byteLength;
        }
        if (page.list_complete) {
          delete ns.cursor;
          ns.status = "complete";
          ns.finishedAt = new Date(now()).toISOString();
          const manifest: NamespaceManifest = {
            format: 1,
            backupId: state.backupId,
            stack,
            namespace: ns.namespace,
            startedAt: ns.startedAt,
            finishedAt: ns.finishedAt,
            keys: ns.keys,
            bytes: ns.bytes,
            parts: ns.parts,
          };
          await ops.call("BACKUPS.put", () =>
            bucket.put(manifestPath(stack, ns.namespace, state.backupId), JSON.stringify(manifest, null, 2), {
              httpMetadata: { contentType: "application/json" },
            }),
          );
          await save(now() + LEASE_MS);
          break;
        }
        ns.cursor = page.cursor;
        await save(now() + LEASE_MS);
      }
    }
  } catch (error) {
    // Hand the run back at once, so the next slice need not wait out the lease.
    await save(0).catch(() => {});
    throw error;
  }

  const run: RunRecord = {
    backupId: state.backupId,
    trigger: state.trigger,
    startedAt: state.startedAt,
    finishedAt: new Date(now()).toISOString(),
    invocations: state.invocations,
    namespaces: state.namespaces.map(({ namespace, status, keys, bytes, parts, reason }) => ({
      namespace,
      status,
      keys,
      bytes,
      parts: parts.length,
      ...(reason ? { reason } : {}),
    })),
  };
  await ops.call("BACKUPS.put", () =>
    bucket.put(runPath(stack, state.backupId), JSON.stringify(run, null, 2), { httpMetadata: { contentType: "application/json" } }),
  );
  await ops.call("BACKUPS.delete", () => bucket.delete(statePath(stack)));
  return { status: "complete", backupId: state.backupId, run, ops: ops.used };
}

/**
 * Writes a page's part as the next part-NNNN. A slice that failed after
 * writing a part and before saving the state leaves that part behind; under a
 * bucket lock it cannot be overwritten, so the part goes under the next
 * number instead (the manifest lists only the parts it uses).
 */
async function writePart(
  ops: OpsBudget,
  bucket: R2Bucket,
  path: (n: number) => string,
  ns: NamespaceProgress,
  bytes: Uint8Array<ArrayBuffer>,
  sha256: string,
): Promise<string> {
  const next = (ns.parts.length > 0 ? Number(/\d+/.exec(ns.parts.at(-1)!.name)![0]) : 0) + 1;
  const put = (n: number) => bucket.put(path(n), bytes, { httpMetadata: { contentType: "application/x-ndjson" }, sha256 });
  try {
    await ops.call("BACKUPS.put", () => put(next));
    return partName(next);
  } catch (error) {
    const left = await ops.call("BACKUPS.head", () => bucket.head(path(next)));
    if (!left) throw error;
    console.warn(`backup: ${path(next)} is left from an interrupted slice and cannot be overwritten; writing part ${next + 1}`);
    await ops.call("BACKUPS.put", () => put(next + 1));
    return partName(next + 1);
  }
}

/** Values for a list page, 100 keys per bulk read; a key deleted since the list is left out. */
async function readValues(ops: OpsBudget, namespace: KvBinding, kv: KVNamespace, keys: KVNamespaceListKey<unknown>[]): Promise<BackupRecord[]> {
  const records: BackupRecord[] = [];
  for (let i = 0; i < keys.length; i += BULK_GET_MAX) {
    const chunk = keys.slice(i, i + BULK_GET_MAX);
    const values = await ops.call(`${namespace}.get`, () => kv.get(chunk.map((key) => key.name), "text"));
    for (const key of chunk) {
      const value = values.get(key.name);
      if (value === null || value === undefined) continue;
      records.push({
        key: key.name,
        value,
        ...(key.metadata === undefined || key.metadata === null ? {} : { metadata: key.metadata }),
        ...(key.expiration === undefined ? {} : { expiration: key.expiration }),
      });
    }
  }
  return records;
}

/**
 * SESSIONS is backed up only once its keys are hashes (issue 20:
 * `session:<sha256>`): a key `session:<raw id>`, or an index entry whose
 * metadata carries a raw session id, is a bearer credential, and a backup
 * would copy credentials into a bucket. The whole namespace is refused then.
 */
export function rawSessionCredential(records: readonly BackupRecord[]): string | undefined {
  for (const record of records) {
    const id = record.key.startsWith(KEY_PREFIX.session) ? record.key.slice(KEY_PREFIX.session.length) : undefined;
    const inMetadata = (record.metadata as { sessionId?: unknown } | undefined)?.sessionId;
    if ((id !== undefined && SESSION_ID_PATTERN.test(id)) || (typeof inMetadata === "string" && SESSION_ID_PATTERN.test(inMetadata))) {
      return "SESSIONS holds raw session ids (session:<id> keys or ids in index metadata); it is backed up only once session keys are hashed";
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Reading what is there
// ---------------------------------------------------------------------------

/** How many finished runs a listing shows, newest first (one R2 read each). */
export const LISTED_RUNS = 20;

export interface BackupListing {
  inProgress?: BackupState;
  runs: RunRecord[];
}

export async function listBackups(bucket: R2Bucket, stack: string): Promise<BackupListing> {
  const ops = new OpsBudget(DEFAULT_OPS_BUDGET);
  const ids = await runIds(ops, bucket, stack);
  const newest = ids.slice(-LISTED_RUNS).reverse();
  const runs = await Promise.all(newest.map((id) => ops.call("BACKUPS.get", () => readJson<RunRecord>(bucket, runPath(stack, id)))));
  const inProgress = await ops.call("BACKUPS.get", () => readJson<BackupState>(bucket, statePath(stack)));
  return { ...(inProgress ? { inProgress } : {}), runs: runs.filter((run): run is RunRecord => run !== undefined) };
}

/** A finished run by id, or the newest one for `latest`. */
export async function findRun(bucket: R2Bucket, stack: string, idOrLatest: string): Promise<RunRecord> {
  const ops = new OpsBudget(DEFAULT_OPS_BUDGET);
  let id = idOrLatest;
  if (idOrLatest === "latest") {
    const ids = await runIds(ops, bucket, stack);
    if (ids.length === 0) throw new BackupError(404, "not_found", `no finished backup of stack ${stack}`);
    id = ids.at(-1)!;
  }
  const run = await ops.call("BACKUPS.get", () => readJson<RunRecord>(bucket, runPath(stack, id)));
  if (!run) throw new BackupError(404, "not_found", `no finished backup ${id} of stack ${stack}`);
  return run;
}

/** Ids of finished runs, oldest first (ids sort by time). */
async function runIds(ops: OpsBudget, bucket: R2Bucket, stack: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await ops.call("BACKUPS.list", () => bucket.list({ prefix: runsPrefix(stack), ...(cursor ? { cursor } : {}) }));
    for (const object of page.objects) ids.push(object.key.slice(runsPrefix(stack).length).replace(/\.json$/, ""));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor && ops.remaining > 10);
  return ids.sort();
}

export async function readJson<T>(bucket: R2Bucket, key: string): Promise<T | undefined> {
  const object = await bucket.get(key);
  return object ? await object.json<T>() : undefined;
}
