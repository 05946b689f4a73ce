/**
 * What a backup is on R2, and the `backups` stack setting: shared by the
 * Worker (scheduled handler, admin routes), the Pulumi program (bucket,
 * lifecycle, cron, validation) and the scripts. Runtime-neutral, like
 * ../contract.ts.
 *
 * Layout in the BACKUPS bucket, all under the stack's name:
 *   <stack>/<namespace>/<backup id>/part-NNNN.ndjson   one KV list page, in key order
 *   <stack>/<namespace>/<backup id>/manifest.json      counts, sha256 per part, started/finished
 *   <stack>/_runs/<backup id>.json                      one finished run: every namespace's outcome
 *   <stack>/_state.json                                 the run in progress (its cursor); none when idle
 */
import { KV_BINDINGS, type KvBinding } from "../contract.ts";

/** The R2 bucket binding the Worker writes backups to. */
export const BACKUPS_BINDING = "BACKUPS";

/** Plain-text variables the backup engine reads (set from the stack's `backups` setting). */
export const BACKUP_VARS = {
  /** The cron expression that starts a backup. */
  schedule: "BACKUP_SCHEDULE",
  /** Comma-separated namespaces to back up, e.g. CONFIG,SESSIONS. */
  namespaces: "BACKUP_NAMESPACES",
} as const;

/** The admin scope that guards the backup routes (ADMIN_TOKEN holds it, as it holds every scope). */
export const BACKUPS_SCOPE = "backups" as const;

/**
 * The second cron trigger: a run too large for one invocation (KV allows 1000
 * operations per invocation) goes on at the next tick of this one. A tick
 * with nothing in progress costs one R2 read.
 */
export const CONTINUE_CRON = "*/5 * * * *";

/** CACHE is derivable from the origin: never backed up. */
export const NEVER_BACKED_UP: readonly KvBinding[] = ["CACHE"];

/** The namespaces a Worker backs up, from BACKUP_NAMESPACES; unknown names and CACHE are dropped. */
export function namespacesFrom(raw: string | undefined): KvBinding[] {
  const names = (raw ?? "").split(",").map((name) => name.trim());
  return KV_BINDINGS.filter((b) => !NEVER_BACKED_UP.includes(b) && names.includes(b)).sort((a, b) => names.indexOf(a) - names.indexOf(b));
}

// ---------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------

/** One key as backed up: one NDJSON line. `expiration` is epoch seconds, as KV reports it. */
export interface BackupRecord {
  key: string;
  value: string;
  metadata?: unknown;
  expiration?: number;
}

export interface PartInfo {
  name: string;
  keys: number;
  bytes: number;
  sha256: string;
  /** The part's first and last key (KV lists in key order), so a restore finds the part holding a key. */
  firstKey: string;
  lastKey: string;
}

export type NamespaceStatus = "pending" | "running" | "complete" | "refused";

export interface NamespaceProgress {
  namespace: KvBinding;
  status: NamespaceStatus;
  /** KV's list cursor where the next page starts. */
  cursor?: string;
  keys: number;
  bytes: number;
  parts: PartInfo[];
  startedAt?: string;
  finishedAt?: string;
  /** Why a namespace was refused (e.g. raw session ids). */
  reason?: string;
}

/** `<stack>/<namespace>/<backup id>/manifest.json`. */
export interface NamespaceManifest {
  format: 1;
  backupId: string;
  stack: string;
  namespace: KvBinding;
  startedAt: string;
  finishedAt: string;
  keys: number;
  bytes: number;
  parts: PartInfo[];
}

export type Trigger = "cron" | "admin";

/** `<stack>/_state.json`: the run in progress. */
export interface BackupState {
  backupId: string;
  trigger: Trigger;
  startedAt: string;
  /** Epoch ms until which one invocation owns the run. */
  leaseUntil: number;
  invocations: number;
  namespaces: NamespaceProgress[];
}

/** `<stack>/_runs/<backup id>.json`: a finished run. */
export interface RunRecord {
  backupId: string;
  trigger: Trigger;
  startedAt: string;
  finishedAt: string;
  invocations: number;
  namespaces: { namespace: KvBinding; status: NamespaceStatus; keys: number; bytes: number; parts: number; reason?: string }[];
}

export const statePath = (stack: string) => `${stack}/_state.json`;
export const runsPrefix = (stack: string) => `${stack}/_runs/`;
export const runPath = (stack: string, backupId: string) => `${runsPrefix(stack)}${backupId}.json`;
export const namespacePrefix = (stack: string, namespace: string, backupId: string) => `${stack}/${namespace}/${backupId}/`;
export const partName = (index: number) => `part-${String(index).padStart(4, "0")}.ndjson`;
export const manifestPath = (stack: string, namespace: string, backupId: string) => `${namespacePrefix(stack, namespace, backupId)}manifest.json`;
export const partPath = (stack: string, namespace: string, backupId: string, name: string) => `${namespacePrefix(stack, namespace, backupId)}${name}`;

/** Sortable by time: 2026-12-05T01-02-03Z-ab12. */
export const BACKUP_ID_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[a-z0-9]{4}$/;
export function newBackupId(now: number, random: () => number = Math.random): string {
  const stamp = new Date(now).toISOString().slice(0, 19).replaceAll(":", "-");
  const suffix = Array.from({ length: 4 }, () => "abcdefghijklmnopqrstuvwxyz0123456789"[Math.floor(random() * 36)]).join("");
  return `${stamp}Z-${suffix}`;
}

export const encodeRecord = (record: BackupRecord) => JSON.stringify(record);

/** A part's lines, checked: a backup is input too (checked by hand: a schema here would cost the bundle). */
export function decodePart(text: string): BackupRecord[] {
  const records: BackupRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (line === "") return;
    const record = JSON.parse(line) as Partial<BackupRecord> | null;
    const valid =
      typeof record === "object" && record !== null && typeof record.key === "string" && typeof record.value === "string" &&
      (record.expiration === undefined || typeof record.expiration === "number");
    if (!valid) throw new Error(`line ${i + 1} is not a backup record {key, value, metadata?, expiration?}`);
    records.push(record as BackupRecord);
  });
  return records;
}

/** KV lists keys in UTF-8 byte order, which is code point order (JS's `<` compares UTF-16 units). */
export function compareKeys(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done || cb.done) return ca.done && cb.done ? 0 : ca.done ? -1 : 1;
    const diff = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (diff !== 0) return diff;
  }
}

export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
