/**
 * The OpenAPI 3.1 document of the whole API, built from the valibot schemas
 * the routes validate with (./api-schemas) and answer with (./api-responses).
 *
 * Built in Node by `npm run build` (dist/openapi.json) and embedded in the
 * bundle as text for `GET /openapi.json`; the Worker never imports this module,
 * so the JSON Schema converter costs the bundle nothing (worker/build.ts).
 * Imports here and in the schema modules name their `.ts` files, as
 * vitest.config.ts's import of ./contract.ts does: Vite's config loader loads
 * this chain too, and asks for explicit extensions.
 */
import { toJsonSchema, toJsonSchemaDefs } from "@valibot/to-json-schema";
import * as v from "valibot";
import {
  BackupParams,
  EvaluationQuery,
  FlagListQuery,
  FlagParams,
  ImportQuery,
  OfrepKeyParams,
  OfrepRequest,
  PageQuery,
  ProductParams,
  PurgeQuery,
  RestoreBody,
  SessionParams,
  UserParams,
} from "./api-schemas.ts";
import * as res from "./api-responses.ts";
import { type AdminScope, CACHE_TTL, Flag, FLAG_ISOLATE_TTL_SECONDS, SESSION_TTL, SessionInput } from "./contract.ts";

/** Kept equal to the app's MAX_BODY_BYTES (a test checks): the app module cannot be imported here. */
export const DOCUMENTED_MAX_BODY_BYTES = 16 * 1024;

type Schema = v.GenericSchema;
type Header = "Retry-After" | "X-Cache" | "ETag" | "Allow" | "WWW-Authenticate";
interface Answer {
  description: string;
  /** Absent for a response without a body (204, 304). */
  schema?: Schema;
  headers?: Header[];
}
export interface Operation {
  method: "get" | "post" | "put" | "delete";
  /** Hono's pattern, as in the app's route table (`/sessions/:id`). */
  path: string;
  operationId: string;
  summary: string;
  description: string;
  tag: "health" | "sessions" | "cache" | "flags" | "backups" | "ofrep";
  /** admin: an admin token holding `scope`; session: such a token or the session itself. */
  auth: "public" | "admin" | "session";
  scope?: AdminScope;
  params?: v.ObjectSchema<v.ObjectEntries, undefined>;
  query?: v.ObjectSchema<v.ObjectEntries, undefined>;
  body?: Schema;
  /** Request headers the route reads, other than Authorization and Content-Type. */
  requestHeaders?: { name: string; description: string }[];
  responses: Record<number, Answer>;
}

// Error answers shared by many operations.
const envelope = (description: string, headers?: Header[]): Answer => ({ description, schema: res.ErrorEnvelope, ...(headers ? { headers } : {}) });
const invalid = envelope("invalid_request: the message names the invalid field; nothing changed");
const unauthorized = envelope("unauthorized: no or wrong admin token", ["WWW-Authenticate"]);
const rateLimited = envelope("rate_limited: over this client's limit", ["Retry-After"]);
const forbidden = envelope("insufficient_scope: an admin token without the operation's scope", ["WWW-Authenticate"]);
const tooLarge = envelope(`payload_too_large: a body over ${DOCUMENTED_MAX_BODY_BYTES} bytes`);
const unavailable = envelope("unavailable: KV failed or timed out, or ADMIN_TOKEN / ORIGIN_URL is unset", ["Retry-After"]);
const managed = envelope("managed_by_config: declared in the stack config; change it there");
/** Shared answers, written once under components.responses and referenced by name. */
const SHARED = new Map<Answer, string>([
  [invalid, "InvalidRequest"],
  [unauthorized, "Unauthorized"],
  [forbidden, "InsufficientScope"],
  [rateLimited, "RateLimited"],
  [tooLarge, "PayloadTooLarge"],
  [unavailable, "Unavailable"],
  [managed, "ManagedByConfig"],
]);
const ofrepRateLimited = (schema: Schema): Answer => ({ description: "GENERAL: over this client's limit", schema, headers: ["Retry-After"] });
const ofrepUnavailable = (schema: Schema): Answer => ({ description: "GENERAL: KV failed or timed out", schema, headers: ["Retry-After"] });

export const OPERATIONS: readonly Operation[] = [
  {
    method: "get", path: "/health", operationId: "getHealth", tag: "health", auth: "public",
    summary: "Liveness, the deployed bundle and version",
    description: "KV: none. `bundleSha256`: sha256 of the deployed dist/worker.js; `versionId`, `versionTag`: the version that answered.",
    responses: { 200: { description: "The Worker is up", schema: res.Health } },
  },
  {
    method: "get", path: "/health/details", operationId: "getHealthDetails", tag: "health", auth: "admin", scope: "read",
    summary: "Health and what protects the API",
    description: "KV: none. /health plus the named admin tokens (names and scopes, never tokens) and whether a previous token is accepted.",
    responses: { 200: { description: "The Worker is up", schema: res.HealthDetails }, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "get", path: "/openapi.json", operationId: "getOpenApiDocument", tag: "health", auth: "public",
    summary: "This document",
    description: "KV: none. Also dist/openapi.json.",
    responses: { 200: { description: "The OpenAPI document", schema: res.OpenApiDocument } },
  },
  {
    method: "post", path: "/sessions", operationId: "createSession", tag: "sessions", auth: "admin", scope: "sessions:write",
    summary: "Create a session",
    description: `KV: 2 puts (the session, its index entry). \`ttlSeconds\` defaults to SESSION_TTL_SECONDS, else ${SESSION_TTL.default}.`,
    body: SessionInput,
    responses: { 201: { description: "Created", schema: res.SessionCreated }, 400: invalid, 401: unauthorized, 403: forbidden, 413: tooLarge, 503: unavailable },
  },
  {
    method: "get", path: "/sessions/:id", operationId: "getSession", tag: "sessions", auth: "public",
    summary: "Read a live session",
    description: "KV: 1 get (none for an id that cannot be one).",
    params: SessionParams,
    responses: { 200: { description: "The session", schema: res.Session }, 404: envelope("not_found: unknown, expired, past its lifetime or revoked"), 503: unavailable },
  },
  {
    method: "delete", path: "/sessions/:id", operationId: "deleteSession", tag: "sessions", auth: "session", scope: "sessions:revoke",
    summary: "End a session (logout)",
    description: "KV: 1 get + 2 deletes (1 delete when it is gone). The admin token or the session itself (bearer or `session` cookie); idempotent.",
    params: SessionParams,
    responses: { 204: { description: "Ended" }, 401: unauthorized, 403: forbidden, 404: envelope("not_found: the id cannot be a session id"), 503: unavailable },
  },
  {
    method: "post", path: "/sessions/:id/refresh", operationId: "refreshSession", tag: "sessions", auth: "session", scope: "sessions:write",
    summary: "Slide a session's expiry",
    description: "KV: 1 get; when it slides + 2 puts + 1 get. Never past the absolute lifetime.",
    params: SessionParams,
    responses: {
      200: { description: "The expiry now", schema: res.SessionRefreshed },
      401: envelope("unauthorized: not the admin token or the session; session_lifetime_exceeded", ["WWW-Authenticate"]), 403: forbidden,
      404: envelope("not_found: unknown, expired or revoked"),
      429: rateLimited,
      503: unavailable,
    },
  },
  {
    method: "get", path: "/users/:userId/sessions", operationId: "listUserSessions", tag: "sessions", auth: "admin", scope: "sessions:revoke",
    summary: "List a user's live sessions, one page per call",
    description: "KV: 1 list per 1000 sessions. Ids shortened to `sessionIdPrefix`; follow `cursor`.",
    params: UserParams,
    query: PageQuery,
    responses: { 200: { description: "One page", schema: res.UserSessionList }, 400: invalid, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "delete", path: "/users/:userId/sessions", operationId: "revokeUserSessions", tag: "sessions", auth: "admin", scope: "sessions:revoke",
    summary: "Sign a user out everywhere, one page per call",
    description: "KV: 1 list + up to 999 deletes (333 sessions). Repeat with `cursor` until `complete`.",
    params: UserParams,
    query: PageQuery,
    responses: { 200: { description: "One page revoked", schema: res.RevokePage }, 400: invalid, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "get", path: "/api/products/:id", operationId: "getProduct", tag: "cache", auth: "public",
    summary: "Read a product through the KV cache",
    description: `KV: hit 1 get, miss 1 get + 1 put. Fresh for CACHE_TTL_SECONDS (${CACHE_TTL.min}-${CACHE_TTL.max} s); STALE when the origin fails.`,
    params: ProductParams,
    responses: {
      200: { description: "The origin's JSON", schema: res.Product, headers: ["X-Cache"] },
      400: invalid,
      404: envelope("not_found: not at the origin"),
      502: envelope("origin_error: the origin failed, no copy cached"),
      429: rateLimited,
      503: unavailable,
    },
  },
  {
    method: "delete", path: "/api/products/:id/cache", operationId: "invalidateProduct", tag: "cache", auth: "admin", scope: "cache:purge",
    summary: "Drop one cached product",
    description: "KV: 1 delete.",
    params: ProductParams,
    responses: { 200: { description: "Dropped", schema: res.Invalidated }, 400: invalid, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "delete", path: "/api/cache", operationId: "purgeCache", tag: "cache", auth: "admin", scope: "cache:purge",
    summary: "Purge cached entries by key prefix, one page per call",
    description: "KV: 1 list + up to 999 deletes. Repeat with `cursor` until `complete`.",
    query: PurgeQuery,
    responses: { 200: { description: "One page purged", schema: res.PurgePage }, 400: invalid, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "get", path: "/api/features", operationId: "listFlags", tag: "flags", auth: "admin", scope: "read",
    summary: "List every flag with its rules",
    description: "KV: 1 list per 1000 flags (and per 1000 evaluators with `format=flagd`). `format=flagd`: one flagd document `{flags, $evaluators}`, what `npm run flags -- export` writes.",
    query: FlagListQuery,
    responses: { 200: { description: "Every flag (a flagd document with format=flagd)", schema: v.union([res.FlagList, res.FlagDocument]) }, 400: invalid, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "post", path: "/api/features", operationId: "importFlags", tag: "flags", auth: "admin", scope: "flags:write",
    summary: "Write one page of a flagd document (flags and $evaluators)",
    description: "Every definition is checked with flagd's schema before any is written; at most 500 entries. `lenient=true`: rules the schema refuses are loaded with warnings, as flagd does. KV: 1 put each.",
    query: ImportQuery,
    body: res.FlagDocument,
    responses: { 200: { description: "What was written", schema: res.ImportResult }, 400: invalid, 401: unauthorized, 403: forbidden, 409: managed, 413: tooLarge, 503: unavailable },
  },
  {
    method: "get", path: "/api/features/:name", operationId: "evaluateFlag", tag: "flags", auth: "public",
    summary: "Evaluate a flag for a user",
    description: `KV: none while the isolate trusts the flag (${FLAG_ISOLATE_TTL_SECONDS} s), else 1 get (+1 per $ref). Missing: off (DEFAULT). Typed flags add value and variant.`,
    params: FlagParams,
    query: EvaluationQuery,
    responses: { 200: { description: "The evaluation", schema: res.FlagEvaluation }, 400: invalid, 429: rateLimited, 503: unavailable },
  },
  {
    method: "put", path: "/api/features/:name", operationId: "putFlag", tag: "flags", auth: "admin", scope: "flags:write",
    summary: "Create or replace a flag",
    description: "The shorthand or a flagd definition, checked with flagd's schema (400 names the flag and path). KV: 1 put (+1 get per $ref).",
    params: FlagParams,
    body: res.FlagDefinition,
    responses: { 200: { description: "The stored flag", schema: res.StoredFlag }, 400: invalid, 401: unauthorized, 403: forbidden, 409: managed, 413: tooLarge, 503: unavailable },
  },
  {
    method: "delete", path: "/api/features/:name", operationId: "deleteFlag", tag: "flags", auth: "admin", scope: "flags:write",
    summary: "Delete a flag",
    description: "KV: 1 delete; idempotent.",
    params: FlagParams,
    responses: { 204: { description: "Deleted" }, 400: invalid, 401: unauthorized, 403: forbidden, 409: managed, 503: unavailable },
  },
  {
    method: "get", path: "/api/backups", operationId: "listBackups", tag: "backups", auth: "admin", scope: "backups",
    summary: "List backups: the one in progress and the newest finished ones",
    description: "R2: 1 list + 1 read per finished backup (newest 20) + 1 read. KV: none.",
    responses: { 200: { description: "The backups", schema: res.BackupListing }, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "post", path: "/api/backups", operationId: "startBackup", tag: "backups", auth: "admin", scope: "backups",
    summary: "Start a backup of the configured namespaces now",
    description:
      "Makes the run's first slice: at most 900 KV and R2 operations (a list and ten bulk reads per 1000 keys). A run not finished in one slice goes on at the next continuation cron tick, or at POST /api/backups/continue.",
    responses: {
      200: { description: "The first slice's outcome", schema: res.BackupSlice },
      401: unauthorized,
      403: forbidden,
      409: envelope("backup_in_progress: another backup runs (continue it); backups_not_configured: no namespaces are configured"),
      503: unavailable,
    },
  },
  {
    method: "post", path: "/api/backups/continue", operationId: "continueBackup", tag: "backups", auth: "admin", scope: "backups",
    summary: "Make one more slice of the backup in progress",
    description: "The slice the continuation cron makes: `idle` when nothing is in progress, `busy` when another invocation holds the run.",
    responses: { 200: { description: "The slice's outcome", schema: res.BackupSlice }, 401: unauthorized, 403: forbidden, 503: unavailable },
  },
  {
    method: "get", path: "/api/backups/:id", operationId: "getBackup", tag: "backups", auth: "admin", scope: "backups",
    summary: "A finished backup, by id or `latest`",
    description: "R2: 1 read (`latest`: 1 list more).",
    params: BackupParams,
    responses: { 200: { description: "The backup", schema: res.BackupRun }, 400: invalid, 401: unauthorized, 403: forbidden, 404: envelope("not_found: no such finished backup"), 503: unavailable },
  },
  {
    method: "post", path: "/api/backups/:id/restore", operationId: "restoreBackup", tag: "backups", auth: "admin", scope: "backups",
    summary: "Restore one namespace from a backup, one slice per call (a dry run unless `apply`)",
    description:
      "A dry run reports what an apply would do: keys added, changed (value, metadata or expiration), deleted, with a sample of each. An apply makes the namespace equal to the backup and is idempotent; flags declared as code are never written or deleted (`managed`). Repeat with `cursor` until `complete`. At most 900 KV and R2 operations per call.",
    params: BackupParams,
    body: RestoreBody,
    responses: {
      200: { description: "What this slice found (and, with apply, did)", schema: res.RestoreSlice },
      400: invalid,
      401: unauthorized,
      403: forbidden,
      404: envelope("not_found: no such finished backup, or it holds no copy of the namespace"),
      413: tooLarge,
      502: envelope("backup_corrupt: a part is missing or does not match its sha256; the restore stops there (what it already wrote came from the same backup)"),
      503: unavailable,
    },
  },
  {
    method: "post", path: "/ofrep/v1/evaluate/flags/:key", operationId: "ofrepEvaluateFlag", tag: "ofrep", auth: "public",
    summary: "OFREP: evaluate one flag (server providers)",
    description: `OFREP 0.3.0 (server providers). The rules and isolate cache of GET /api/features/{name}; the whole context reaches flagd rules. No value when the caller's default applies. KV: none while trusted (${FLAG_ISOLATE_TTL_SECONDS} s), else 1 get.`,
    params: OfrepKeyParams,
    body: OfrepRequest,
    responses: {
      200: { description: "The evaluation", schema: res.OfrepEvaluation },
      400: { description: "PARSE_ERROR or INVALID_CONTEXT", schema: res.OfrepFailure },
      500: { description: "GENERAL: the rule chose a variant the flag lacks", schema: res.OfrepFailure },
      404: { description: "FLAG_NOT_FOUND: the SDK returns the caller's default", schema: res.OfrepFailure },
      413: { description: `GENERAL: a request body over ${DOCUMENTED_MAX_BODY_BYTES} bytes`, schema: res.OfrepFailure },
      429: ofrepRateLimited(res.OfrepFailure),
      503: ofrepUnavailable(res.OfrepFailure),
    },
  },
  {
    method: "post", path: "/ofrep/v1/evaluate/flags", operationId: "ofrepEvaluateFlags", tag: "ofrep", auth: "public",
    summary: "OFREP: evaluate every flag (web providers)",
    description: `OFREP 0.3.0 (web providers). From the isolate's copy of the flag set: KV lists at most once per ${FLAG_ISOLATE_TTL_SECONDS} s per isolate. ETag: a hash of the answer. CORS: any origin.`,
    requestHeaders: [{ name: "If-None-Match", description: "An earlier answer's ETag" }],
    body: OfrepRequest,
    responses: {
      200: { description: "Every flag for the context", schema: res.OfrepBulkEvaluation, headers: ["ETag"] },
      304: { description: "Not modified", headers: ["ETag"] },
      400: { description: "PARSE_ERROR or INVALID_CONTEXT", schema: res.OfrepBulkFailure },
      413: { description: `GENERAL: a request body over ${DOCUMENTED_MAX_BODY_BYTES} bytes`, schema: res.OfrepBulkFailure },
      429: ofrepRateLimited(res.OfrepBulkFailure),
      503: ofrepUnavailable(res.OfrepBulkFailure),
    },
  },
];

/** Schemas referenced by name from components.schemas. */
const NAMED: Record<string, Schema> = {
  Error: res.ErrorEnvelope,
  Flag,
  SessionInput,
  Session: res.Session,
  OfrepEvaluation: res.OfrepEvaluation,
  OfrepFailure: res.OfrepFailure,
  BackupRun: res.BackupRun,
  BackupInProgress: res.BackupInProgress,
};

const HEADERS: Record<Header, { description: string; schema: object }> = {
  "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 1 } },
  "X-Cache": { description: "HIT, MISS (from the origin) or STALE (the origin failed)", schema: { enum: ["HIT", "MISS", "STALE"] } },
  ETag: { description: "Tag of this answer, for If-None-Match", schema: { type: "string" } },
  Allow: { description: "The methods the path accepts", schema: { type: "string" } },
  "WWW-Authenticate": { description: "The bearer challenge", schema: { type: "string" } },
};

const CONFIG = { target: "draft-2020-12", definitions: NAMED } as const;

/** A JSON Schema for `schema`, naming the shared schemas as components. */
function jsonSchema(schema: Schema): object {
  const { $schema: _, $defs: __, ...rest } = toJsonSchema(schema, CONFIG) as Record<string, unknown>;
  return JSON.parse(JSON.stringify(rest).replaceAll('"#/$defs/', '"#/components/schemas/'));
}

const openApiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}");

function parameters(op: Operation): object[] {
  const from = (where: "path" | "query", schema: Operation["params"]) => {
    if (!schema) return [];
    const json = jsonSchema(schema) as { properties: Record<string, object>; required?: string[] };
    return Object.entries(json.properties).map(([name, property]) => ({ name, in: where, required: json.required?.includes(name) ?? false, schema: property }));
  };
  const headers = (op.requestHeaders ?? []).map(({ name, description }) => ({ name, in: "header", required: false, description, schema: { type: "string" } }));
  return [...from("path", op.params), ...from("query", op.query), ...headers];
}

/** OpenAPI 3.1 lets a bearer scheme's requirement list the roles it needs: here the admin scope. */
const security = ({ auth, scope }: Operation) => {
  const admin = { adminToken: scope ? [scope] : [] };
  return auth === "public" ? [] : auth === "admin" ? [admin] : [admin, { sessionToken: [] }, { sessionCookie: [] }];
};

function responseObject(answer: Answer): object {
  return {
    description: answer.description,
    ...(answer.headers ? { headers: Object.fromEntries(answer.headers.map((h) => [h, { $ref: `#/components/headers/${h}` }])) } : {}),
    ...(answer.schema ? { content: { "application/json": { schema: jsonSchema(answer.schema) } } } : {}),
  };
}

function operationObject(op: Operation): object {
  const responses = Object.fromEntries(
    Object.entries(op.responses).map(([status, answer]) => {
      const shared = SHARED.get(answer);
      return [status, shared ? { $ref: `#/components/responses/${shared}` } : responseObject(answer)];
    }),
  );
  const params = parameters(op);
  return {
    operationId: op.operationId,
    summary: op.summary,
    description: op.description,
    tags: [op.tag],
    security: security(op),
    ...(params.length ? { parameters: params } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: true,
            description: `JSON, at most ${DOCUMENTED_MAX_BODY_BYTES} bytes`,
            content: { "application/json": { schema: jsonSchema(op.body) } },
          },
        }
      : {}),
    responses,
  };
}

/** The whole document; `version` is the package version the bundle is built from. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, object>> = {};
  for (const op of OPERATIONS) (paths[openApiPath(op.path)] ??= {})[op.method] = operationObject(op);
  return {
    openapi: "3.1.0",
    info: {
      title: "kv-worker-stack",
      version,
      description:
        "Sessions, a product cache and feature flags on Workers KV; flags also over OFREP. Errors: `{error, code}` (OFREP: `{key?, errorCode, errorDetails}`); any route: 405 with Allow, 500 `internal_error`; no route: 404.",
    },
    tags: [
      { name: "health", description: "Liveness and this document" },
      { name: "sessions", description: "Sessions in KV SESSIONS" },
      { name: "cache", description: "The product cache in KV CACHE" },
      { name: "flags", description: "Feature flags in KV CONFIG" },
      { name: "backups", description: "Backups of KV namespaces to R2, and restores (docs/backups.md)" },
      { name: "ofrep", description: "The same flags over the OpenFeature Remote Evaluation Protocol 0.3.0" },
    ],
    paths,
    components: {
      schemas: toJsonSchemaDefs(NAMED, { target: "draft-2020-12" }),
      responses: Object.fromEntries([...SHARED].map(([answer, name]) => [name, responseObject(answer)])),
      headers: HEADERS,
      securitySchemes: {
        adminToken: {
          type: "http",
          scheme: "bearer",
          description: "ADMIN_TOKEN (every scope; ADMIN_TOKEN_PREVIOUS during a rotation) or a named token of ADMIN_TOKENS (its scopes); compared in constant time",
        },
        sessionToken: { type: "http", scheme: "bearer", description: "A session id, to end or refresh that session" },
        sessionCookie: { type: "apiKey", in: "cookie", name: "session", description: "A session id, to end or refresh that session" },
      },
    },
  };
}
