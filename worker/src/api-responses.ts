/**
 * The schemas of what the routes answer, for the OpenAPI document, the typed
 * client and the contract test; the routes' answers are typed against them.
 * Never imported by the Worker at run time (only `import type`): schemas the
 * Worker does not validate with would only add to the bundle.
 */
import * as v from "valibot";
import { OFREP_ERROR_CODES } from "./api-schemas.ts";
import { ADMIN_SCOPES, Flag, SESSION_ID_PATTERN, SESSION_ID_PREFIX_LENGTH, SessionRecord, type sessionView } from "./contract.ts";
import type { Reason } from "./flags/evaluate.ts";

export const ERROR_CODES = [
  "invalid_request",
  "unauthorized",
  "insufficient_scope",
  "rate_limited",
  "not_found",
  "method_not_allowed",
  "managed_by_config",
  "session_lifetime_exceeded",
  "backup_in_progress",
  "backups_not_configured",
  "backup_corrupt",
  "payload_too_large",
  "origin_error",
  "unavailable",
  "internal_error",
] as const;
export const ErrorEnvelope = v.strictObject({ error: v.pipe(v.string(), v.minLength(1)), code: v.picklist(ERROR_CODES) });

export const Health = v.strictObject({
  status: v.literal("ok"),
  environment: v.string(),
  version: v.string(),
  bundleSha256: v.nullable(v.string()),
  /** From the version_metadata binding: which version of the Worker answered. */
  versionId: v.nullable(v.string()),
  versionTag: v.nullable(v.string()),
});

/** GET /health/details (scope `read`): /health plus what protects the API, never a token. */
export const HealthDetails = v.strictObject({
  ...Health.entries,
  adminTokens: v.array(v.strictObject({ name: v.string(), scopes: v.array(v.picklist(ADMIN_SCOPES)) })),
  adminTokenPrevious: v.boolean(),
});

export const SessionCreated = v.strictObject({ sessionId: v.pipe(v.string(), v.regex(SESSION_ID_PATTERN)), expiresAt: v.string() });
/** A refresh answers the session's (possibly moved) expiry, as creating it did. */
export const SessionRefreshed = SessionCreated;
/** What GET /sessions/:id shows (contract's sessionView): the stored record without its bookkeeping (ttlSeconds). */
const { ttlSeconds: _bookkeeping, ...viewEntries } = SessionRecord.entries;
export const Session = v.strictObject(viewEntries);
type View = ReturnType<typeof sessionView>;
type Described = v.InferOutput<typeof Session>;
// Fails to compile when sessionView's answer and this schema differ in a field or a field's type.
const viewMatches: [View, keyof View, keyof Described] extends [Described, keyof Described, keyof View] ? true : never = true;
void viewMatches;

/** One page of a user's sessions, from the index: never a full session id. */
export const UserSessionList = v.strictObject({
  sessions: v.array(
    v.strictObject({
      sessionIdPrefix: v.pipe(v.string(), v.length(SESSION_ID_PREFIX_LENGTH)),
      createdAt: v.string(),
      expiresAt: v.string(),
      lastSeenAt: v.optional(v.string()),
    }),
  ),
  cursor: v.optional(v.string()),
});
/** One page of a sign-out-everywhere; repeat with `cursor` until `complete`. */
export const RevokePage = v.strictObject({
  revoked: v.pipe(v.number(), v.integer(), v.minValue(0)),
  complete: v.boolean(),
  cursor: v.optional(v.string()),
});

/** Whatever JSON the origin answered for the product, passed through unchanged. */
export const Product = v.unknown();
export const Invalidated = v.strictObject({ invalidated: v.literal(true) });
export const PurgePage = v.strictObject({
  deleted: v.pipe(v.number(), v.integer(), v.minValue(0)),
  complete: v.boolean(),
  cursor: v.optional(v.string()),
});

const REASONS = ["DISABLED", "TARGETING_MATCH", "SPLIT", "STATIC", "DEFAULT", "ERROR"] as const satisfies readonly Reason[];
// Fails to compile when the engine gains a reason this list lacks.
const everyReason: readonly (typeof REASONS)[number][] = [] as Reason[];
void everyReason;
/** What OFREP answers as a success: every reason but ERROR (errors have their own shape). */
const OFREP_REASONS = REASONS.filter((reason) => reason !== "ERROR");

/** A flag variant's value: any JSON. */
const FlagValue = v.pipe(v.unknown(), v.description("The variant's value: boolean, string, number or object"));

/**
 * A flag in flagd's definition format (flagd.dev/reference/flag-definitions),
 * described loosely here: the routes check it with flagd's own JSON schema
 * (https://flagd.dev/schema/v0/flags.json), whose errors name the path.
 */
export const FlagdFlag = v.object({
  state: v.picklist(["ENABLED", "DISABLED"]),
  variants: v.record(v.string(), FlagValue),
  defaultVariant: v.optional(v.nullable(v.string())),
  targeting: v.optional(v.record(v.string(), v.unknown())),
  metadata: v.optional(v.record(v.string(), v.union([v.string(), v.number(), v.boolean()]))),
});
/** What PUT /api/features/{name} accepts and GET /api/features lists: either form. */
export const FlagDefinition = v.union([Flag, FlagdFlag]);

export const FlagEvaluation = v.strictObject({
  name: v.string(),
  enabled: v.boolean(),
  reason: v.picklist(REASONS),
  value: v.optional(FlagValue),
  variant: v.optional(v.string()),
  errorCode: v.optional(v.picklist(["PARSE_ERROR", "GENERAL"])),
  errorDetails: v.optional(v.string()),
});
export const StoredFlag = v.union([v.strictObject({ name: v.string(), ...Flag.entries }), v.object({ name: v.string(), ...FlagdFlag.entries })]);
export const FlagList = v.array(v.strictObject({ name: v.string(), flag: FlagDefinition }));
/** A flagd document: flags (either form) and shared evaluators. */
export const FlagDocument = v.object({
  flags: v.record(v.string(), FlagDefinition),
  $evaluators: v.optional(v.record(v.string(), v.record(v.string(), v.unknown()))),
});
export const ImportResult = v.strictObject({
  flags: v.pipe(v.number(), v.integer(), v.minValue(0)),
  evaluators: v.pipe(v.number(), v.integer(), v.minValue(0)),
  warnings: v.array(v.string()),
});

/** OFREP's flag metadata: primitive values only (the flag's other metadata entries are left out). */
export const OfrepMetadata = v.record(v.string(), v.union([v.string(), v.number(), v.boolean()]));
export const OfrepEvaluation = v.strictObject({
  key: v.string(),
  value: v.optional(FlagValue),
  reason: v.picklist(OFREP_REASONS),
  variant: v.optional(v.string()),
  metadata: OfrepMetadata,
});
export const OfrepFailure = v.strictObject({ key: v.string(), errorCode: v.picklist(OFREP_ERROR_CODES), errorDetails: v.string() });
export const OfrepBulkEvaluation = v.strictObject({
  flags: v.array(v.union([OfrepEvaluation, v.strictObject({ key: v.string(), errorCode: v.picklist(["PARSE_ERROR", "GENERAL"]), errorDetails: v.string() })])),
});
export const OfrepBulkFailure = v.strictObject({ errorCode: v.picklist(OFREP_ERROR_CODES), errorDetails: v.string() });

export type FlagEvaluation = v.InferOutput<typeof FlagEvaluation>;
export type OfrepEvaluation = v.InferOutput<typeof OfrepEvaluation>;

/** GET /openapi.json: checked in depth by the OpenAPI validator in the tests, here only its outline. */
export const OpenApiDocument = v.looseObject({
  openapi: v.literal("3.1.0"),
  info: v.looseObject({ title: v.string(), version: v.string() }),
  paths: v.record(v.string(), v.unknown()),
});

// ---------------------------------------------------------------------------
// Backups (worker/src/backup/format.ts describes the objects)
// ---------------------------------------------------------------------------

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const namespace = v.picklist(["CONFIG", "SESSIONS"]);
const status = v.picklist(["pending", "running", "complete", "refused"]);
const RunNamespace = v.strictObject({ namespace, status, keys: count, bytes: count, parts: count, reason: v.optional(v.string()) });
/** A finished backup. */
export const BackupRun = v.strictObject({
  backupId: v.string(),
  trigger: v.picklist(["cron", "admin"]),
  startedAt: v.string(),
  finishedAt: v.string(),
  invocations: count,
  namespaces: v.array(RunNamespace),
});
const Part = v.strictObject({ name: v.string(), keys: count, bytes: count, sha256: v.string(), firstKey: v.string(), lastKey: v.string() });
/** The backup in progress, with its cursor. */
export const BackupInProgress = v.strictObject({
  backupId: v.string(),
  trigger: v.picklist(["cron", "admin"]),
  startedAt: v.string(),
  leaseUntil: count,
  invocations: count,
  namespaces: v.array(
    v.strictObject({
      namespace,
      status,
      cursor: v.optional(v.string()),
      keys: count,
      bytes: count,
      parts: v.array(Part),
      startedAt: v.optional(v.string()),
      finishedAt: v.optional(v.string()),
      reason: v.optional(v.string()),
    }),
  ),
});
export const BackupListing = v.strictObject({ inProgress: v.optional(BackupInProgress), runs: v.array(BackupRun) });
/** What one slice of a backup did: `running` goes on at the next slice (the cron's, or POST /api/backups/continue). */
export const BackupSlice = v.strictObject({
  status: v.picklist(["idle", "busy", "running", "complete"]),
  backupId: v.optional(v.string()),
  ops: count,
  inProgress: v.optional(BackupInProgress),
  run: v.optional(BackupRun),
});
const keys = v.array(v.string());
export const RestoreSlice = v.strictObject({
  backupId: v.string(),
  namespace,
  apply: v.boolean(),
  complete: v.boolean(),
  cursor: v.optional(v.string()),
  counts: v.strictObject({ added: count, changed: count, deleted: count, unchanged: count, managed: count, expired: count }),
  sample: v.strictObject({ added: keys, changed: keys, deleted: keys, managed: keys, expired: keys }),
  ops: count,
});
