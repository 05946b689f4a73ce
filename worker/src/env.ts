import type { SessionRecord, VersionMetadata } from "./contract";

/** Bindings the Worker receives; names match KV_BINDINGS, VARS and SECRETS in ./contract. */
export interface Env {
  SESSIONS: KVNamespace;
  CACHE: KVNamespace;
  CONFIG: KVNamespace;
  ADMIN_TOKEN?: string;
  ADMIN_TOKEN_PREVIOUS?: string;
  /** Named admin tokens with scopes, JSON (contract's AdminTokens). */
  ADMIN_TOKENS?: string;
  ENVIRONMENT?: string;
  ORIGIN_URL?: string;
  SESSION_TTL_SECONDS?: string;
  SESSION_MAX_LIFETIME_SECONDS?: string;
  CACHE_TTL_SECONDS?: string;
  MANAGED_FLAGS?: string;
  BUNDLE_SHA256?: string;
  /** VARS.rateLimits: the limits below, JSON {name: {limit, period}}. */
  RATE_LIMITS?: string;
  /** Workers Rate Limiting (contract's RATE_LIMIT_BINDINGS); absent means not limited. */
  PRODUCT_MISS_LIMITER?: RateLimit;
  REFRESH_CLIENT_LIMITER?: RateLimit;
  REFRESH_SESSION_LIMITER?: RateLimit;
  FLAG_EVALUATION_LIMITER?: RateLimit;
  /** VERSION_METADATA_BINDING in ./contract; absent only where nothing supplies it. */
  CF_VERSION_METADATA?: VersionMetadata;
  /** BACKUPS_BINDING and BACKUP_VARS in ./backup/format: the backups bucket and what goes into it. */
  BACKUPS?: R2Bucket;
  BACKUP_SCHEDULE?: string;
  BACKUP_NAMESPACES?: string;
}

/** Per-request values set by middleware. */
export interface Vars {
  session: SessionRecord & { sessionId: string };
}

export type AppEnv = { Bindings: Env; Variables: Vars };

/** Replaced by esbuild at build time; see worker/build.ts. */
declare global {
  const __BUILD_VERSION__: string;
}
