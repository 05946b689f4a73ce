/**
 * What the Worker, the local runner, the tests and the Pulumi program share:
 * binding names, KV key builders, value/metadata codecs and TTLs.
 *
 * This module must stay runtime-neutral (no Workers or Node globals) because
 * it is imported by code that runs in workerd and by code that runs in Node.
 */
import * as v from "valibot";
import { type FlagDefinition, readDefinition, readEvaluator } from "./flags/model.ts";

/** KV namespace bindings, in the order they are provisioned and listed. */
export const KV_BINDINGS = ["SESSIONS", "CACHE", "CONFIG"] as const;
export type KvBinding = (typeof KV_BINDINGS)[number];

/** Plain-text variables the Worker reads; all are strings on the wire. */
export const VARS = {
  environment: "ENVIRONMENT",
  originUrl: "ORIGIN_URL",
  sessionTtlSeconds: "SESSION_TTL_SECONDS",
  /** Absolute session lifetime from createdAt; refreshes never extend a session past it. */
  sessionMaxLifetimeSeconds: "SESSION_MAX_LIFETIME_SECONDS",
  cacheTtlSeconds: "CACHE_TTL_SECONDS",
  /** Comma-separated names of the flags declared as code in the stack config, and `$<name>` for each evaluator declared there. */
  managedFlags: "MANAGED_FLAGS",
  /** sha256 of dist/worker.js, reported by /health. */
  bundleSha256: "BUNDLE_SHA256",
  /** The limits the ratelimit bindings enforce, JSON {name: {limit, period}}: the period is a 429's Retry-After. */
  rateLimits: "RATE_LIMITS",
} as const;

/**
 * The `version_metadata` binding: the running version's {id, tag, timestamp},
 * reported by /health so a smoke test can tell which version answered.
 */
export const VERSION_METADATA_BINDING = "CF_VERSION_METADATA";

/** What the version_metadata binding holds; the local stack and tests supply a stand-in. */
export interface VersionMetadata {
  id: string;
  tag: string;
  timestamp: string;
}

/** The stand-in for the local stack and tests: no Cloudflare version exists there. */
export const LOCAL_VERSION_METADATA: VersionMetadata = {
  id: "00000000-0000-4000-8000-000000000000",
  tag: "local",
  timestamp: "1970-01-01T00:00:00.000Z",
};

/** Secret variables; never plain text, never in an output. */
export const SECRETS = {
  adminToken: "ADMIN_TOKEN",
  /** The token being rotated out: still accepted, so clients can move to the new one without downtime. */
  adminTokenPrevious: "ADMIN_TOKEN_PREVIOUS",
  /** Named tokens with scopes: a JSON list of AdminToken (Pulumi config `adminTokens`). */
  adminTokens: "ADMIN_TOKENS",
} as const;

// ---------------------------------------------------------------------------
// Rate limits (the Workers Rate Limiting binding)
// ---------------------------------------------------------------------------

/**
 * What is limited, each by its own `ratelimit` binding (one limit and period
 * per binding): product misses, session refreshes and flag evaluations (the
 * flag API and OFREP) per client IP, and refreshes per session as well.
 */
export const RATE_LIMIT_BINDINGS = {
  productMisses: "PRODUCT_MISS_LIMITER",
  refreshesPerClient: "REFRESH_CLIENT_LIMITER",
  refreshesPerSession: "REFRESH_SESSION_LIMITER",
  flagEvaluations: "FLAG_EVALUATION_LIMITER",
} as const;
export type RateLimitName = keyof typeof RATE_LIMIT_BINDINGS;
export const RATE_LIMIT_NAMES = Object.keys(RATE_LIMIT_BINDINGS) as RateLimitName[];

/** The binding counts in windows of 10 or 60 seconds, nothing else. */
export const RATE_LIMIT_PERIODS = [10, 60] as const;
export interface RateLimit {
  limit: number;
  period: (typeof RATE_LIMIT_PERIODS)[number];
}

/**
 * Per stack in Pulumi config (`rateLimits`); a limit the stack leaves out
 * takes its default here. Generous for one person or one NAT, tight for a
 * script: a product miss costs an origin fetch and a KV write.
 */
export const RATE_LIMIT_DEFAULTS: Record<RateLimitName, RateLimit> = {
  productMisses: { limit: 600, period: 60 },
  refreshesPerClient: { limit: 600, period: 60 },
  refreshesPerSession: { limit: 120, period: 60 },
  flagEvaluations: { limit: 6000, period: 60 },
};

/** A stack's limits: `namespaceBase` is the first binding namespace id (one per limit, in RATE_LIMIT_NAMES order). */
export interface RateLimitsSettings {
  namespaceBase: number;
  limits: Record<RateLimitName, RateLimit>;
}

export interface RateLimitBinding extends RateLimit {
  name: (typeof RATE_LIMIT_BINDINGS)[RateLimitName];
  namespaceId: string;
}

/** The `ratelimit` bindings a stack provisions (Pulumi) or runs with (npm start). */
export const rateLimitBindings = ({ namespaceBase, limits }: RateLimitsSettings): RateLimitBinding[] =>
  RATE_LIMIT_NAMES.map((name, i) => ({ name: RATE_LIMIT_BINDINGS[name], namespaceId: String(namespaceBase + i), ...limits[name] }));

// ---------------------------------------------------------------------------
// Admin tokens and their scopes
// ---------------------------------------------------------------------------

/**
 * What an admin token may do. ADMIN_TOKEN (and ADMIN_TOKEN_PREVIOUS) hold
 * every scope; a named token in ADMIN_TOKENS holds the scopes it lists.
 */
export const ADMIN_SCOPES = ["sessions:write", "sessions:revoke", "flags:write", "cache:purge", "read", "backups"] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

/** Shorter tokens are refused: a token is a password nobody types, so it can be long. */
export const ADMIN_TOKEN_MIN_LENGTH = 16;

export const AdminToken = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "must be 1-64 letters, digits, _ . or -")),
  // Own messages: valibot's would quote the value, and this value is a secret.
  token: v.pipe(
    v.string("must be a string"),
    v.minLength(ADMIN_TOKEN_MIN_LENGTH, `must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters`),
    v.maxLength(512, "must be at most 512 characters"),
    v.regex(/^\S+$/, "must have no whitespace"),
  ),
  scopes: v.pipe(v.array(v.picklist(ADMIN_SCOPES)), v.minLength(1)),
});
export type AdminToken = v.InferOutput<typeof AdminToken>;

export const AdminTokens = v.array(AdminToken);

/** ADMIN_TOKENS as configured (JSON text), checked; the error names what is wrong, never a token. */
export function parseAdminTokens(raw: string | undefined): { tokens: AdminToken[] } | { error: string } {
  if (raw === undefined || raw.trim() === "") return { tokens: [] };
  const parsed = v.safeParse(AdminTokens, parseJson(raw));
  if (parsed.success) {
    const tokens = parsed.output;
    for (const field of ["name", "token"] as const) {
      if (new Set(tokens.map((t) => t[field])).size < tokens.length) return { error: `two tokens have the same ${field}` };
    }
    return { tokens };
  }
  const issue = parsed.issues[0];
  const path = v.getDotPath(issue);
  return { error: `${path ? `${path}: ` : ""}${issue.input === undefined && !path ? "is not JSON" : issue.message}` };
}

/**
 * The Workers runtime behaviour the Worker is written against, deployed and
 * local alike: the newest date the pinned workerd supports (package.json pins
 * one workerd for npm start, the tests, the bench and wrangler). A later date
 * than workerd knows would make the local stack fall back to an older one.
 */
export const COMPATIBILITY_DATE = "2026-11-17";
export const COMPATIBILITY_FLAGS: readonly string[] = ["nodejs_compat"];

// ---------------------------------------------------------------------------
// TTLs (seconds). KV refuses an expirationTtl below 60 s.
// ---------------------------------------------------------------------------

export const KV_MIN_TTL_SECONDS = 60;
export const SESSION_TTL = { default: 86_400, min: KV_MIN_TTL_SECONDS, max: 2_592_000 } as const;
/** No session outlives createdAt + this, however often it is refreshed (default 30 days, at most a year). */
export const SESSION_MAX_LIFETIME = { default: 2_592_000, min: KV_MIN_TTL_SECONDS, max: 31_536_000 } as const;
/**
 * A refresh within this long of the session's last write answers without
 * writing: KV allows one write per second per key, and a client refreshing on
 * every request must not cost a write each time. A tenth of the session's TTL
 * (so a short session still slides), at most this many seconds.
 */
export const SESSION_REFRESH_INTERVAL_MAX_SECONDS = 60;
export const CACHE_TTL = { default: 300, min: KV_MIN_TTL_SECONDS, max: 86_400 } as const;
/** How long a cached product is kept past freshness, to be served as STALE when the origin fails. */
export const CACHE_STALE_SECONDS = 86_400;
/**
 * How long one isolate trusts a flag it has read. KV itself propagates writes
 * to other locations in about 60 s, so a flag change is visible everywhere
 * within FLAG_ISOLATE_TTL_SECONDS + ~60 s.
 */
export const FLAG_ISOLATE_TTL_SECONDS = 30;

/**
 * KV's `cacheTtl` on reads: how long a location's edge cache may answer a read
 * without asking KV's central store again (KV's default is 60 s, its minimum
 * 30 s). The staleness each API accepts decides it (docs/api.md, "Read caching"):
 * sessions and flags take the minimum, so a logout or a flag change reaches
 * every location sooner than KV's default; a cached product carries its own
 * freshness in its metadata, so it takes its freshness window
 * (CACHE_TTL_SECONDS), see the cache store.
 */
export const KV_MIN_CACHE_TTL_SECONDS = 30;
export const READ_CACHE_TTL = { session: KV_MIN_CACHE_TTL_SECONDS, flag: KV_MIN_CACHE_TTL_SECONDS } as const;

/** Clamp a configured TTL into [min, max]; falls back to the default when unset or not a number. */
export function ttlFrom(raw: string | number | undefined, bounds: { default: number; min: number; max: number }): number {
  const n = typeof raw === "number" ? raw : raw === undefined || raw === "" ? NaN : Number(raw);
  if (!Number.isFinite(n)) return bounds.default;
  return Math.min(bounds.max, Math.max(bounds.min, Math.floor(n)));
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

export const SESSION_ID_LENGTH = 32;
/** nanoid's URL-safe alphabet, fixed length. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;
/** `.` and `..` are refused: they are path segments that would take the origin URL elsewhere. */
export const PRODUCT_ID_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.:-]{1,128}$/;
export const FLAG_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export const KEY_PREFIX = { session: "session:", userSession: "user-session:", product: "product:", flag: "flag:", evaluator: "evaluator:" } as const;

/**
 * A session id is a bearer credential, so it is never a KV key: the session
 * lives under `session:<sha256(id)>` (base64url, 43 characters). Anyone who
 * can list or dump SESSIONS (dashboard, `wrangler kv key list`, a backup, a
 * cursor) sees hashes, from which no id can be recovered.
 */
export const sessionHash = (id: string) => digest(id);
export const sessionKey = async (id: string) => sessionKeyOfHash(await sessionHash(id));
export const sessionKeyOfHash = (hash: string) => `${KEY_PREFIX.session}${hash}`;
/**
 * Where sessions were stored before they were hashed (`session:<id>`). Read
 * only as a fallback, so sessions issued before the change keep working; a
 * refresh moves one to its hashed key. Remove (with LegacyUserSessionMetadata)
 * once sessionMaxLifetimeSeconds has passed since the hashed version was
 * deployed: by then every session stored this way has expired.
 */
export const legacySessionKey = (id: string) => `${KEY_PREFIX.session}${id}`;
export const productKey = (id: string) => `${KEY_PREFIX.product}${id}`;
export const flagKey = (name: string) => `${KEY_PREFIX.flag}${name}`;
export const flagNameFromKey = (key: string) => key.slice(KEY_PREFIX.flag.length);
/** A shared targeting rule (a flagd `$evaluators` entry), stored once and referenced by flags with `{"$ref": name}`. */
export const evaluatorKey = (name: string) => `${KEY_PREFIX.evaluator}${name}`;
export const evaluatorNameFromKey = (key: string) => key.slice(KEY_PREFIX.evaluator.length);

/**
 * The per-user session index: `user-session:<h(userId)>:<h(sessionId)>`, h =
 * SHA-256, base64url. KV has no secondary index, so each session has this
 * entry next to it (same expiry) and a user's sessions are one prefix list.
 * Hashes, not the ids: a user id may be up to 1 KiB of UTF-8 and may contain
 * `:` (so `u` would prefix `u:x`'s entries), and a KV list cursor can encode
 * the last key name, so a key holding the session id would hand out bearer
 * credentials through the listing's cursor. The full id travels in the
 * entry's metadata, which only the Worker sees.
 */
export const userSessionPrefix = async (userId: string) => `${KEY_PREFIX.userSession}${await digest(`user:${userId}`)}:`;
export const userSessionKey = async (userId: string, sessionId: string) =>
  `${await userSessionPrefix(userId)}${await digest(`session:${sessionId}`)}`;

/** SHA-256, base64url without padding (43 characters); Web Crypto, available in workerd and Node alike. */
async function digest(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

export const SessionInput = v.strictObject({
  userId: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  email: v.pipe(v.string(), v.maxLength(254), v.email()),
  roles: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(64))), v.maxLength(32))),
  ttlSeconds: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(SESSION_TTL.min), v.maxValue(SESSION_TTL.max)),
  ),
});
export type SessionInput = v.InferOutput<typeof SessionInput>;

/** A session as stored in KV. Times are ISO-8601 strings. */
export const SessionRecord = v.object({
  userId: v.string(),
  email: v.string(),
  roles: v.array(v.string()),
  createdAt: v.string(),
  expiresAt: v.string(),
  /**
   * The TTL each refresh slides the expiry by. Absent on sessions written
   * before refresh existed; those also have no index entry until a refresh
   * writes one.
   */
  ttlSeconds: v.optional(v.number()),
  /** When a refresh last wrote this session. */
  lastSeenAt: v.optional(v.string()),
});
export type SessionRecord = v.InferOutput<typeof SessionRecord>;

/** What GET /sessions/:id shows: the stored record without the bookkeeping. */
export const sessionView = ({ userId, email, roles, createdAt, expiresAt, lastSeenAt }: SessionRecord) => ({
  userId,
  email,
  roles,
  createdAt,
  expiresAt,
  ...(lastSeenAt === undefined ? {} : { lastSeenAt }),
});

/** How many leading characters of a session id a listing shows: enough to tell sessions apart, far from a credential. */
export const SESSION_ID_PREFIX_LENGTH = 8;

const SESSION_HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/**
 * Metadata of a user-session index entry: what a listing shows, and the hash
 * of the session a revocation deletes. Never the session id itself.
 */
export const UserSessionMetadata = v.object({
  sessionHash: v.pipe(v.string(), v.regex(SESSION_HASH_PATTERN)),
  sessionIdPrefix: v.pipe(v.string(), v.regex(new RegExp(`^[A-Za-z0-9_-]{${SESSION_ID_PREFIX_LENGTH}}$`))),
  createdAt: v.string(),
  expiresAt: v.string(),
  lastSeenAt: v.optional(v.string()),
});
export type UserSessionMetadata = v.InferOutput<typeof UserSessionMetadata>;

/** Index metadata written before sessions were hashed: it carries the full id. Goes with legacySessionKey. */
export const LegacyUserSessionMetadata = v.object({
  sessionId: v.pipe(v.string(), v.regex(SESSION_ID_PATTERN)),
  createdAt: v.string(),
  expiresAt: v.string(),
  lastSeenAt: v.optional(v.string()),
});
export type LegacyUserSessionMetadata = v.InferOutput<typeof LegacyUserSessionMetadata>;

export function decodeUserSessionMetadata(metadata: unknown): UserSessionMetadata | LegacyUserSessionMetadata | undefined {
  const parsed = v.safeParse(UserSessionMetadata, metadata);
  if (parsed.success) return parsed.output;
  const legacy = v.safeParse(LegacyUserSessionMetadata, metadata);
  return legacy.success ? legacy.output : undefined;
}

export const encodeSession = (session: SessionRecord) => JSON.stringify(session);

/** Decodes a stored session; undefined when the stored value is not a session. */
export function decodeSession(raw: string): SessionRecord | undefined {
  const parsed = v.safeParse(SessionRecord, parseJson(raw));
  return parsed.success ? parsed.output : undefined;
}

// ---------------------------------------------------------------------------
// Feature flags
// ---------------------------------------------------------------------------

/**
 * A flag as the API, the stack file and KV hold it: flagd's definition format
 * or the seed's shorthand (./flags/model). `Flag` is the shorthand's schema,
 * the form older clients and stack files write.
 */
export { Shorthand as Flag } from "./flags/model.ts";
export type { FlagDefinition } from "./flags/model.ts";

/** Any request body larger than this is refused with 413. */
export const MAX_BODY_BYTES = 16 * 1024;
/** Flags and evaluators one import page (POST /api/features) may write: each is one KV put, and an invocation may make 1000 KV operations. */
export const IMPORT_PAGE_MAX_ENTRIES = 500;

/** KV caps metadata at 1024 bytes of serialised JSON. */
export const KV_METADATA_MAX_BYTES = 1024;

/**
 * Flag metadata: the whole flag when it fits, so that listing flags costs one
 * KV list per 1000 flags and no per-flag reads. A flag too large for metadata
 * (long allow-lists, large rules) is marked `oversize` and costs one extra
 * read when listed. Evaluators (`evaluator:<name>`) are stored the same way.
 */
export type FlagMetadata = { flag: unknown } | { oversize: true };

const fitsMetadata = (metadata: object) => new TextEncoder().encode(JSON.stringify(metadata)).byteLength <= KV_METADATA_MAX_BYTES;

export function encodeFlag(flag: FlagDefinition): { value: string; metadata: FlagMetadata } {
  const metadata: FlagMetadata = { flag };
  return { value: JSON.stringify(flag), metadata: fitsMetadata(metadata) ? metadata : { oversize: true } };
}

/** Decodes a stored flag value; undefined when it is not a flag in either form. */
export const decodeFlag = (raw: string): FlagDefinition | undefined => readDefinition(parseJson(raw));

/** The flag carried in list metadata, or undefined when it must be read from the value. */
export function flagFromMetadata(metadata: unknown): FlagDefinition | undefined {
  if (typeof metadata !== "object" || metadata === null || !("flag" in metadata)) return undefined;
  return readDefinition(metadata.flag);
}

/** An evaluator is stored like a flag: the rule as the value, and in the metadata when it fits. */
export const encodeEvaluator = (rule: Record<string, unknown>) => {
  const metadata: FlagMetadata = { flag: rule };
  return { value: JSON.stringify(rule), metadata: fitsMetadata(metadata) ? metadata : ({ oversize: true } as FlagMetadata) };
};
export const decodeEvaluator = (raw: string) => readEvaluator(parseJson(raw));
export const evaluatorFromMetadata = (metadata: unknown) =>
  typeof metadata === "object" && metadata !== null && "flag" in metadata ? readEvaluator(metadata.flag) : undefined;

// ---------------------------------------------------------------------------
// Cached products
// ---------------------------------------------------------------------------

/** Stored alongside a cached origin body; `fetchedAt` is epoch milliseconds. */
export const CacheMetadata = v.object({ fetchedAt: v.number(), ttlSeconds: v.number(), missing: v.optional(v.boolean()) });
/**
 * How long the origin's 404 for a product is remembered (negative caching),
 * so repeated requests for one unknown id stop reaching the origin: KV's
 * minimum TTL, so a product added at the origin shows within about a minute.
 */
export const NEGATIVE_CACHE_TTL_SECONDS = KV_MIN_TTL_SECONDS;
export type CacheMetadata = v.InferOutput<typeof CacheMetadata>;

export function decodeCacheMetadata(metadata: unknown): CacheMetadata | undefined {
  const parsed = v.safeParse(CacheMetadata, metadata);
  return parsed.success ? parsed.output : undefined;
}

// ---------------------------------------------------------------------------

/** Human-readable issue list for a failed validation, naming each field. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .map((issue) => {
      const path = v.getDotPath(issue);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
