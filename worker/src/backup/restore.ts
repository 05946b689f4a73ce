/**
 * Restore one namespace from a backup, one bounded slice per call: a dry run
 * (the default) reports what would change; an apply makes KV equal to the
 * backup, except flags managed as code, which are never touched. Every write
 * is "set this key to what the backup holds" or "delete this key", so an
 * interrupted apply, run again from the start, ends in the same state.
 *
 * Two phases, each in chunks of CHUNK keys:
 * - scan: walk KV's own keys (list pages); a key the backup lacks is deleted,
 *   a key whose value, metadata or expiration differs is rewritten. Parts are
 *   in key order with their first and last key in the manifest, so the part
 *   holding a key is found without reading the others.
 * - add: walk the backup's parts; a key KV lacks is written.
 */
import { evaluatorKey, flagKey, type KvBinding } from "../contract.ts";
import { compareKeys, decodePart, manifestPath, type NamespaceManifest, partPath, type BackupRecord, sha256Hex } from "./format.ts";
import { BackupError, DEFAULT_OPS_BUDGET, OpsBudget } from "./ops.ts";
import { readJson } from "./backup.ts";

/** Keys per chunk: one list or part slice, one bulk read, at most this many writes. */
export const CHUNK = 100;
/** KV refuses an expiration less than 60 s ahead; such a key is about to expire anyway and is skipped. */
const MIN_EXPIRATION_AHEAD_S = 61;
export const SAMPLE_SIZE = 10;

export type RestoreCursor = { phase: "scan"; kvCursor?: string } | { phase: "add"; part: number; offset: number };

export interface RestoreDeps {
  kv: KVNamespace;
  bucket: R2Bucket;
  stack: string;
  /**
   * Flags declared as code (MANAGED_FLAGS, where a shared rule declared as
   * code is `$<name>`): the code wins, a restore never writes or deletes them.
   */
  managedFlags: readonly string[];
  now?: () => number;
  opsBudget?: number;
  timeoutMs?: number;
}

export interface RestoreRequest {
  backupId: string;
  namespace: KvBinding;
  apply: boolean;
  cursor?: RestoreCursor | undefined;
}

export const OUTCOMES = ["added", "changed", "deleted", "unchanged", "managed", "expired"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface RestoreSlice {
  backupId: string;
  namespace: KvBinding;
  apply: boolean;
  complete: boolean;
  cursor?: RestoreCursor;
  counts: Record<Outcome, number>;
  /** Up to SAMPLE_SIZE keys per outcome (not `unchanged`). */
  sample: Record<Exclude<Outcome, "unchanged">, string[]>;
  ops: number;
}

export async function restoreSlice(deps: RestoreDeps, request: RestoreRequest): Promise<RestoreSlice> {
  const { kv, bucket, stack } = deps;
  const { backupId, namespace, apply } = request;
  const now = deps.now ?? Date.now;
  const ops = new OpsBudget(deps.opsBudget ?? DEFAULT_OPS_BUDGET, deps.timeoutMs);
  const manifest = await ops.call("BACKUPS.get", () => readJson<NamespaceManifest>(bucket, manifestPath(stack, namespace, backupId)));
  if (!manifest) throw new BackupError(404, "not_found", `backup ${backupId} holds no finished copy of ${namespace}`);

  const managed = new Set(namespace === "CONFIG" ? deps.managedFlags.map(managedKey) : []);
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const sample: RestoreSlice["sample"] = { added: [], changed: [], deleted: [], managed: [], expired: [] };
  const note = (outcome: Outcome, key: string) => {
    counts[outcome] += 1;
    if (outcome !== "unchanged" && sample[outcome].length < SAMPLE_SIZE) sample[outcome].push(key);
  };
  const expiresSoon = (record: BackupRecord) => record.expiration !== undefined && record.expiration < now() / 1000 + MIN_EXPIRATION_AHEAD_S;

  const parts = new Map<number, BackupRecord[]>();
  async function part(index: number): Promise<BackupRecord[]> {
    const cached = parts.get(index);
    if (cached) return cached;
    const info = manifest!.parts[index]!;
    const bytes = await ops.call("BACKUPS.get", async () => {
      const object = await bucket.get(partPath(stack, namespace, backupId, info.name));
      return object ? new Uint8Array(await object.arrayBuffer()) : undefined;
    });
    if (!bytes) throw new BackupError(502, "backup_corrupt", `backup ${backupId} is missing ${namespace}/${info.name} (deleted by retention?)`);
    if ((await sha256Hex(bytes)) !== info.sha256) throw new BackupError(502, "backup_corrupt", `${namespace}/${info.name} of backup ${backupId} does not match its sha256`);
    let records: BackupRecord[];
    try {
      records = decodePart(new TextDecoder().decode(bytes));
    } catch (error) {
      throw new BackupError(502, "backup_corrupt", `${namespace}/${info.name} of backup ${backupId}: ${(error as Error).message}`);
    }
    parts.set(index, records);
    return records;
  }
  /** The part whose key range holds `key`, if any (binary search over the manifest). */
  function partOf(key: string): number | undefined {
    let lo = 0;
    let hi = manifest!.parts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const info = manifest!.parts[mid]!;
      if (compareKeys(key, info.firstKey) < 0) hi = mid - 1;
      else if (compareKeys(key, info.lastKey) > 0) lo = mid + 1;
      else return mid;
    }
    return undefined;
  }
  const write = (record: BackupRecord) =>
    ops.call(`${namespace}.put`, () =>
      kv.put(record.key, record.value, {
        ...(record.metadata === undefined ? {} : { metadata: record.metadata }),
        ...(record.expiration === undefined ? {} : { expiration: record.expiration }),
      }),
    );

  let cursor: RestoreCursor = request.cursor ?? { phase: "scan" };
  // A chunk's worst case: a list, a bulk read, a write per key, and a part read (scan: a few).
  const chunkCost = 2 + CHUNK + 1;
  for (;;) {
    if (ops.remaining < chunkCost) break;
    if (cursor.phase === "scan") {
      const scanCursor = cursor.kvCursor;
      const page = await ops.call(`${namespace}.list`, () => kv.list({ limit: CHUNK, ...(scanCursor ? { cursor: scanCursor } : {}) }));
      const needed = [...new Set(page.keys.map((k) => partOf(k.name)).filter((i): i is number => i !== undefined && !parts.has(i)))];
      // Not enough left for this page's parts: leave the page to the next slice (one list spent).
      if (ops.remaining < needed.length + 1 + CHUNK) break;
      const inBackup = new Map<string, BackupRecord>();
      for (const index of [...new Set(page.keys.map((k) => partOf(k.name)))]) {
        if (index === undefined) continue;
        for (const record of await part(index)) inBackup.set(record.key, record);
      }
      const live = page.keys.filter((k) => !managed.has(k.name));
      const values = live.length === 0 ? new Map<string, string | null>() : await ops.call(`${namespace}.get`, () => kv.get(live.map((k) => k.name), "text"));
      for (const key of page.keys) {
        if (managed.has(key.name)) {
          note("managed", key.name);
          continue;
        }
        const record = inBackup.get(key.name);
        if (!record) {
          note("deleted", key.name);
          if (apply) await ops.call(`${namespace}.delete`, () => kv.delete(key.name));
        } else if (expiresSoon(record)) {
          note("expired", key.name);
        } else if (
          values.get(key.name) === record.value &&
          sameMetadata(key.metadata, record.metadata) &&
          sameExpiration(key.expiration, record.expiration)
        ) {
          note("unchanged", key.name);
        } else {
          note("changed", key.name);
          if (apply) await write(record);
        }
      }
      cursor = page.list_complete ? { phase: "add", part: 0, offset: 0 } : { phase: "scan", kvCursor: page.cursor };
    } else {
      if (cursor.part >= manifest.parts.length) break;
      const records = (await part(cursor.part)).slice(cursor.offset, cursor.offset + CHUNK);
      const candidates = records.filter((r) => !managed.has(r.key));
      const values =
        candidates.length === 0 ? new Map<string, string | null>() : await ops.call(`${namespace}.get`, () => kv.get(candidates.map((r) => r.key), "text"));
      for (const record of records) {
        if (managed.has(record.key)) {
          // Counted here only when KV lacks it; a managed key KV has was counted by the scan.
          continue;
        }
        if (values.get(record.key) !== null) continue; // present: the scan compared it
        if (expiresSoon(record)) {
          note("expired", record.key);
          continue;
        }
        note("added", record.key);
        if (apply) await write(record);
      }
      const offset = cursor.offset + CHUNK;
      const partLength = (await part(cursor.part)).length;
      cursor = offset < partLength ? { phase: "add", part: cursor.part, offset } : { phase: "add", part: cursor.part + 1, offset: 0 };
    }
    if (cursor.phase === "add" && cursor.part >= manifest.parts.length) break;
  }
  const complete = cursor.phase === "add" && cursor.part >= manifest.parts.length;
  // A slice that could not afford one chunk would hand back its own cursor, and a caller would loop forever.
  if (!complete && JSON.stringify(cursor) === JSON.stringify(request.cursor ?? { phase: "scan" })) {
    throw new BackupError(503, "unavailable", `a restore slice of ${deps.opsBudget ?? DEFAULT_OPS_BUDGET} operations cannot make progress`);
  }
  return { backupId, namespace, apply, complete, ...(complete ? {} : { cursor }), counts, sample, ops: ops.used };
}

const sameMetadata = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
/** KV reports expirations in whole seconds; a second either way is the same expiration. */
const sameExpiration = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? a === b : Math.abs(a - b) <= 1);

/** The CONFIG key of a MANAGED_FLAGS entry: `$<name>` is a shared rule (`evaluator:<name>`), anything else a flag. */
const managedKey = (entry: string) => (entry.startsWith("$") ? evaluatorKey(entry.slice(1)) : flagKey(entry));
