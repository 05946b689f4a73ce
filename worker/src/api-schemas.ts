/**
 * The schemas the routes validate requests with. The OpenAPI document
 * (./openapi.ts) and the typed client (client/) are built from these same
 * schemas, so the document cannot describe a request the routes would
 * validate differently. What the routes answer is in ./api-responses.
 *
 * Runtime-neutral like ./contract: imported by the Worker and, at build time, by Node.
 */
import * as v from "valibot";
import { BACKUP_ID_PATTERN } from "./backup/format.ts";
import { FLAG_NAME_PATTERN, KV_BINDINGS, PRODUCT_ID_PATTERN, SESSION_ID_PATTERN } from "./contract.ts";

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

export const SessionParams = v.object({ id: v.pipe(v.string(), v.regex(SESSION_ID_PATTERN)) });
/** The same bounds as SessionInput's userId, so every user that can have sessions can be named here. */
export const UserParams = v.object({ userId: v.pipe(v.string(), v.minLength(1), v.maxLength(256)) });
/** A page of a user's sessions: listed, or revoked. */
export const PageQuery = v.object({ cursor: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(1024))) });
export const ProductParams = v.object({
  id: v.pipe(v.string(), v.regex(PRODUCT_ID_PATTERN, "must be 1-128 characters of A-Z a-z 0-9 _ . : - and not . or ..")),
});
export const PurgeQuery = v.object({
  prefix: v.pipe(v.string("is required"), v.minLength(1, "must not be empty"), v.maxLength(512)),
  cursor: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(1024))),
});
export const FlagParams = v.object({
  name: v.pipe(v.string(), v.regex(FLAG_NAME_PATTERN, "must be 1-128 characters of A-Z a-z 0-9 _ . : -, starting with a letter or digit")),
});
export const FlagListQuery = v.object({ format: v.optional(v.picklist(["flagd"])) });
export const ImportQuery = v.object({ lenient: v.optional(v.picklist(["true", "false"])) });
/** A finished backup by id, or `latest`. */
export const BackupParams = v.object({
  id: v.pipe(v.string(), v.regex(new RegExp(`^latest$|${BACKUP_ID_PATTERN.source}`), "must be a backup id (e.g. 2026-12-05T03-00-00Z-ab12) or latest")),
});
/** One slice of a restore; repeat with the returned `cursor` until `complete`. A dry run unless `apply` is true. */
export const RestoreBody = v.strictObject({
  namespace: v.picklist(KV_BINDINGS.filter((b) => b !== "CACHE"), "must be CONFIG or SESSIONS"),
  apply: v.optional(v.boolean("must be true or false"), false),
  cursor: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(4096))),
});
/** The longest userId an evaluation accepts. */
export const USER_ID_MAX_LENGTH = 256;
export const EvaluationQuery = v.object({ userId: v.optional(v.pipe(v.string(), v.maxLength(USER_ID_MAX_LENGTH))) });

/**
 * An OpenFeature evaluation context. `targetingKey` is the user id the
 * shorthand's rules and buckets use; every attribute is available to flagd
 * targeting rules (`{"var": "email"}`).
 */
export const OfrepContext = v.looseObject({ targetingKey: v.optional(v.pipe(v.string(), v.maxLength(256))) });
/** OFREP's flag key: any string (one that cannot be a flag name is simply not found). */
export const OfrepKeyParams = v.object({ key: v.string() });
/** Unknown top-level fields are ignored rather than refused: later OFREP versions may add some. */
export const OfrepRequest = v.object({ context: v.optional(OfrepContext) });

/** The error codes of OFREP's error shape that this API answers. */
export const OFREP_ERROR_CODES = ["PARSE_ERROR", "INVALID_CONTEXT", "TARGETING_KEY_MISSING", "FLAG_NOT_FOUND", "GENERAL"] as const;
export type OfrepErrorCode = (typeof OFREP_ERROR_CODES)[number];
