/**
 * The OpenAPI 3.1 document of the whole API, built from the valibot schemas
 * the routes validate with (./api-schemas) and answer with (./api-responses).
 *
 * Built in Node by `npm run build` (dist/openapi.json) and embedded in the
 * bundle as text for `GET /openapi.json`; the Worker never imports this module,
 * so the JSON Schema converter costs the bundle nothing (scripts/build.ts).
 * Imports here and in the schema modules name their `.ts` files, as
 * vitest.config.ts's import of ./contract.ts does: Vite's config loader loads
 * this chain too, and asks for explicit extensions.
 */
import { toJsonSchema, toJsonSchemaDefs } from "@valibot/to-json-schema";
import type * as v from "valibot";
import { EvaluationQuery, FlagParams, OfrepKeyParams, OfrepRequest, ProductParams, PurgeQuery, SessionParams } from "./api-schemas.ts";
import * as res from "./api-responses.ts";
import { CACHE_TTL, Flag, FLAG_ISOLATE_TTL_SECONDS, SESSION_TTL, SessionInput } from "./contract.ts";

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
  tag: "health" | "sessions" | "cache" | "flags" | "ofrep";
  /** admin: the admin bearer token; session: the admin token or the session itself. */
  auth: "public" | "admin" | "session";
  params?: v.ObjectSchema<v.ObjectEntries, undefined>;
  query?: v.ObjectSchema<v.ObjectEntries, undefined>;
  body?: Schema;
  /** Request headers the route reads, other than Authorization and Content-Type. */
  requestHeaders?: { name: string; description: string }[];
  responses: Record<number, Answer>;
}

// Error answers shared by many operations.
const envelope = (description: string, headers?: Header[]): Answer => ({ description, schema: res.ErrorEnvelope, ...(headers ? { headers } : {}) });
const invalid = envelope("invalid_request: a path, query or body field is invalid; the message names it, and nothing was changed");
const unauthorized = envelope("unauthorized: the admin token is missing or wrong", ["WWW-Authenticate"]);
const tooLarge = envelope(`payload_too_large: any request body over ${DOCUMENTED_MAX_BODY_BYTES} bytes`);
const unavailable = envelope("unavailable: KV failed or timed out, the admin API has no ADMIN_TOKEN configured, or the origin is unset", ["Retry-After"]);
const managed = envelope("managed_by_config: the flag is declared as code in the stack config; change it there and run pulumi up");
/** Shared answers, written once under components.responses and referenced by name. */
const SHARED = new Map<Answer, string>([
  [invalid, "InvalidRequest"],
  [unauthorized, "Unauthorized"],
  [tooLarge, "PayloadTooLarge"],
  [unavailable, "Unavailable"],
  [managed, "ManagedByConfig"],
]);
const ofrepUnavailable = (schema: Schema): Answer => ({ description: "GENERAL: KV failed or timed out; retry after Retry-After seconds", schema, headers: ["Retry-After"] });

export const OPERATIONS: readonly Operation[] = [
  {
    method: "get", path: "/health", operationId: "getHealth", tag: "health", auth: "public",
    summary: "Liveness and the deployed bundle",
    description: "No KV operation. `bundleSha256` is the sha256 of the deployed dist/worker.js, null when not reported.",
    responses: { 200: { description: "The Worker is up", schema: res.Health } },
  },
  {
    method: "get", path: "/openapi.json", operationId: "getOpenApiDocument", tag: "health", auth: "public",
    summary: "This document",
    description: "The OpenAPI 3.1 document of every route, also written by `npm run build` to dist/openapi.json.",
    responses: { 200: { description: "The OpenAPI document", schema: res.OpenApiDocument } },
  },
  {
    method: "post", path: "/sessions", operationId: "createSession", tag: "sessions", auth: "admin",
    summary: "Create a session",
    description: `One KV put. The session expires after \`ttlSeconds\` (${SESSION_TTL.min}-${SESSION_TTL.max}; default SESSION_TTL_SECONDS, else ${SESSION_TTL.default}).`,
    body: SessionInput,
    responses: { 201: { description: "Created", schema: res.SessionCreated }, 400: invalid, 401: unauthorized, 413: tooLarge, 503: unavailable },
  },
  {
    method: "get", path: "/sessions/:id", operationId: "getSession", tag: "sessions", auth: "public",
    summary: "Read a live session",
    description: "One KV get; none for an id that cannot be a session id.",
    params: SessionParams,
    responses: { 200: { description: "The session", schema: res.Session }, 404: envelope("not_found: unknown or expired"), 503: unavailable },
  },
  {
    method: "delete", path: "/sessions/:id", operationId: "deleteSession", tag: "sessions", auth: "session",
    summary: "End a session (logout)",
    description: "One KV delete. The admin token or the session itself (bearer token or `session` cookie) may end it; ending one already gone is a 204 too.",
    params: SessionParams,
    responses: { 204: { description: "Ended" }, 401: unauthorized, 404: envelope("not_found: the id cannot be a session id"), 503: unavailable },
  },
  {
    method: "get", path: "/api/products/:id", operationId: "getProduct", tag: "cache", auth: "public",
    summary: "Read a product through the KV cache",
    description: `Hit: one KV get; miss: one get and one put. Fresh for CACHE_TTL_SECONDS (${CACHE_TTL.min}-${CACHE_TTL.max}, default ${CACHE_TTL.default}); when the origin fails, a copy up to 24 h older is served as STALE.`,
    params: ProductParams,
    responses: {
      200: { description: "The origin's JSON for the product, unchanged", schema: res.Product, headers: ["X-Cache"] },
      400: invalid,
      404: envelope("not_found: the origin has no such product"),
      502: envelope("origin_error: the origin failed and no cached copy exists"),
      503: unavailable,
    },
  },
  {
    method: "delete", path: "/api/products/:id/cache", operationId: "invalidateProduct", tag: "cache", auth: "admin",
    summary: "Drop one cached product",
    description: "One KV delete.",
    params: ProductParams,
    responses: { 200: { description: "Dropped (or was not cached)", schema: res.Invalidated }, 400: invalid, 401: unauthorized, 503: unavailable },
  },
  {
    method: "delete", path: "/api/cache", operationId: "purgeCache", tag: "cache", auth: "admin",
    summary: "Purge cached entries by key prefix, one page per call",
    description: "One KV list and up to 999 deletes per call (a Worker invocation may make 1000 KV operations). Repeat with the returned `cursor` until `complete: true`; `npm run purge` does.",
    query: PurgeQuery,
    responses: { 200: { description: "One page purged", schema: res.PurgePage }, 400: invalid, 401: unauthorized, 503: unavailable },
  },
  {
    method: "get", path: "/api/features", operationId: "listFlags", tag: "flags", auth: "admin",
    summary: "List every flag with its rules",
    description: "One KV list per 1000 flags (a flag too large for KV metadata costs one extra read). Admin only: flags hold user ids.",
    responses: { 200: { description: "Every flag", schema: res.FlagList }, 401: unauthorized, 503: unavailable },
  },
  {
    method: "get", path: "/api/features/:name", operationId: "evaluateFlag", tag: "flags", auth: "public",
    summary: "Evaluate a flag for a user",
    description: `No KV operation while this isolate trusts the flag (${FLAG_ISOLATE_TTL_SECONDS} s), else one get. A missing flag is off (DEFAULT).`,
    params: FlagParams,
    query: EvaluationQuery,
    responses: { 200: { description: "The evaluation", schema: res.FlagEvaluation }, 400: invalid, 503: unavailable },
  },
  {
    method: "put", path: "/api/features/:name", operationId: "putFlag", tag: "flags", auth: "admin",
    summary: "Create or replace a flag",
    description: "One KV put. Unknown fields are refused.",
    params: FlagParams,
    body: Flag,
    responses: { 200: { description: "The stored flag", schema: res.StoredFlag }, 400: invalid, 401: unauthorized, 409: managed, 413: tooLarge, 503: unavailable },
  },
  {
    method: "delete", path: "/api/features/:name", operationId: "deleteFlag", tag: "flags", auth: "admin",
    summary: "Delete a flag",
    description: "One KV delete; deleting a missing flag is a 204 too.",
    params: FlagParams,
    responses: { 204: { description: "Deleted" }, 400: invalid, 401: unauthorized, 409: managed, 503: unavailable },
  },
  {
    method: "post", path: "/ofrep/v1/evaluate/flags/:key", operationId: "ofrepEvaluateFlag", tag: "ofrep", auth: "public",
    summary: "OFREP: evaluate one flag (server providers)",
    description: `OpenFeature Remote Evaluation Protocol 0.3.0, for \`@openfeature/ofrep-provider\` and other server providers. The same rules, buckets and isolate cache as GET /api/features/{name}, with \`context.targetingKey\` as the user id; no KV operation while the isolate trusts the flag (${FLAG_ISOLATE_TTL_SECONDS} s). Errors use OFREP's shape. A flag's metadata entries that are not strings, numbers or booleans are left out.`,
    params: OfrepKeyParams,
    body: OfrepRequest,
    responses: {
      200: { description: "The evaluation: variant `on` or `off`", schema: res.OfrepEvaluation },
      400: { description: "PARSE_ERROR: the body is not a JSON object; INVALID_CONTEXT: the context has the wrong shape", schema: res.OfrepFailure },
      404: { description: "FLAG_NOT_FOUND: the SDK answers the caller's default", schema: res.OfrepFailure },
      413: { description: `GENERAL: a request body over ${DOCUMENTED_MAX_BODY_BYTES} bytes`, schema: res.OfrepFailure },
      503: ofrepUnavailable(res.OfrepFailure),
    },
  },
  {
    method: "post", path: "/ofrep/v1/evaluate/flags", operationId: "ofrepEvaluateFlags", tag: "ofrep", auth: "public",
    summary: "OFREP: evaluate every flag (web providers)",
    description: "OpenFeature Remote Evaluation Protocol 0.3.0 bulk evaluation, for `@openfeature/ofrep-web-provider` and other static-context providers. One KV list per 1000 flags, no per-flag read. The ETag is a hash of the answer: it changes when a flag change alters what this context sees. Both OFREP routes allow CORS from any origin (preflight answered, ETag exposed), for web providers in browsers.",
    requestHeaders: [{ name: "If-None-Match", description: "The ETag of an earlier answer: 304 with no body while it is still current" }],
    body: OfrepRequest,
    responses: {
      200: { description: "Every flag, evaluated for the context", schema: res.OfrepBulkEvaluation, headers: ["ETag"] },
      304: { description: "Not modified: the If-None-Match tag is current", headers: ["ETag"] },
      400: { description: "PARSE_ERROR or INVALID_CONTEXT", schema: res.OfrepBulkFailure },
      413: { description: `GENERAL: a request body over ${DOCUMENTED_MAX_BODY_BYTES} bytes`, schema: res.OfrepBulkFailure },
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
};

const HEADERS: Record<Header, { description: string; schema: object }> = {
  "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 1 } },
  "X-Cache": { description: "HIT (fresh copy), MISS (fetched from the origin now) or STALE (the origin failed; an older copy)", schema: { enum: ["HIT", "MISS", "STALE"] } },
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

const SECURITY = { public: [], admin: [{ adminToken: [] }], session: [{ adminToken: [] }, { sessionToken: [] }, { sessionCookie: [] }] };

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
    security: SECURITY[op.auth],
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
      description: [
        "Sessions, a product cache and feature flags on Cloudflare Workers KV; flags also over OFREP for OpenFeature SDKs.",
        'Errors are JSON `{"error", "code"}` (OFREP routes: `{key?, errorCode, errorDetails}`). Any path answers 405',
        "`method_not_allowed` (with Allow) to a method it does not serve, and 404 `not_found` when no route matches;",
        "an unexpected fault is a 500 `internal_error` that reveals nothing.",
      ].join(" "),
    },
    tags: [
      { name: "health", description: "Liveness and this document" },
      { name: "sessions", description: "Sessions in KV SESSIONS" },
      { name: "cache", description: "The product cache in KV CACHE" },
      { name: "flags", description: "Feature flags in KV CONFIG" },
      { name: "ofrep", description: "The same flags over the OpenFeature Remote Evaluation Protocol 0.3.0" },
    ],
    paths,
    components: {
      schemas: toJsonSchemaDefs(NAMED, { target: "draft-2020-12" }),
      responses: Object.fromEntries([...SHARED].map(([answer, name]) => [name, responseObject(answer)])),
      headers: HEADERS,
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN secret; compared in constant time" },
        sessionToken: { type: "http", scheme: "bearer", description: "A session id, to end that session" },
        sessionCookie: { type: "apiKey", in: "cookie", name: "session", description: "A session id, to end that session" },
      },
    },
  };
}
