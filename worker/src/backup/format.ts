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
import * as v from "valibot";
import { describeIssues, KV_BINDINGS, type KvBinding } from "../contract.ts";

/** The R2 bucket binding the Worker writes backups to. */
export const BACKUPS_BINDING = "BACKUPS";

/** Plain-text variables the backup engine reads (set from the stack's `backups` setting). */
export const BACKUP_VARS = {
  /** The cron expression that starts a backup. */
  schedule: "BACKUP_SCHEDULE",
  /** Comma-separated namespaces to back up, e.g. CONFIG,SESSIONS. */
  namespaces: "BACKUP_NAMESPACES",
} as const;

/**
 * The admin scope that guards the backup routes once scoped admin tokens
 * exist (issue 20); until then the routes take the admin token.
 */
export const BACKUPS_SCOPE = "backups";

/**
 * The second cron trigger: a run too large for one invocation (KV allows 1000
 * operations per invocation) goes on at the next tick of this one. A tick
 * with nothing in progress costs one R2 read.
 */
export const CONTINUE_CRON = "*/5 * * * *";

/** CACHE is derivable from the origin: never backed up. */
export const NEVER_BACKED_UP: readonly KvBinding[] = ["CACHE"];

// ---------------------------------------------------------------------------
// The `backups` stack setting
// ---------------------------------------------------------------------------

/** Five cron fields as Cloudflare's Cron Triggers take them (minute hour day-of-month month day-of-week). */
const CRON_FIELD = /^(\*|\?|L|W|#|[0-9A-Za-z,\-/*#LW?]+)$/;
export function isCron(expression: string): boolean {
  const fields = expression.trim().split(/\s+/);
  return fields.length === 5 && fields.every((field) => CRON_FIELD.test(field));
}

export const BackupsConfig = v.strictObject({
  schedule: v.pipe(
    v.string("must be a cron expression"),
    v.check(isCron, "must be a cron expression of five fields, e.g. 0 3 * * * (daily at 03:00 UTC)"),
    v.check((cron) => cron.trim() !== CONTINUE_CRON, `must differ from ${CONTINUE_CRON}, the continuation trigger`),
  ),
  retainDays: v.pipe(v.number("must be a number of days"), v.integer("must be a whole number of days"), v.minValue(1), v.maxValue(3650)),
  namespaces: v.pipe(
    v.array(
      v.pipe(
        v.string(),
        v.check((name) => !NEVER_BACKED_UP.includes(name as KvBinding), "CACHE is never backed up: it is derivable from the origin"),
        v.picklist(KV_BINDINGS.filter((b) => !NEVER_BACKED_UP.includes(b)), `must be one of ${KV_BINDINGS.filter((b) => !NEVER_BACKED_UP.includes(b)).join(", ")}`),
      ),
    ),
    v.check((names) => new Set(names).size === names.length, "must not repeat a namespace"),
  ),
  /** Bucket lock: backups cannot be deleted or overwritten before retainDays (immutable backups). */
  lock: v.optional(v.boolean("must be true or false"), false),
});
export type BackupsConfig = v.InferOutput<typeof BackupsConfig>;

export const DEFAULT_BACKUPS: BackupsConfig = { schedule: "0 3 * * *", retainDays: 30, namespaces: ["CONFIG", "SESSIONS"], lock: false };

/** The setting, validated; throws an Error naming each invalid field. */
export function parseBackupsConfig(raw: unknown): BackupsConfig {
  const parsed = v.safeParse(BackupsConfig, raw);
  if (!parsed.success) throw new Error(describeIssues(parsed.issues));
  return { ...parsed.output, namespaces: parsed.output.namespaces as KvBinding[] } as BackupsConfig;
}

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

const Record_ = v.object({ key: v.string(), value: v.string(), metadata: v.optional(v.unknown()), expiration: v.optional(v.number()) });
/** A part's lines, checked: a backup is input too. */
export function decodePart(text: string): BackupRecord[] {
  const records: BackupRecord[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const parsed = v.safeParse(Record_, JSON.parse(line));
    if (!parsed.success) throw new Error(`a line is not a backup record: ${describeIssues(parsed.issues)}`);
    records.push(parsed.output);
  }
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
