/**
 * A small typed client for the Worker's API, for other TypeScript services
 * and for `npm run smoke` / `npm run purge` / `npm run revoke`.
 *
 *   import { createApiClient } from "kv-worker-stack/client";
 *   const api = createApiClient({ baseUrl: "https://…", adminToken });
 *   const { sessionId } = await api.createSession({ userId: "u1", email: "u1@example.com" });
 *
 * Request and response types are inferred from the valibot schemas the routes
 * validate with and the OpenAPI document is generated from; each operation's
 * method, path and success status are checked against the document by
 * scripts/test/contract.test.ts. Like openapi-fetch, it trusts the types
 * rather than validating answers at run time (the contract test holds the
 * Worker to the document). For flags in an application, prefer an OpenFeature
 * SDK with an OFREP provider (README).
 */
import type * as v from "valibot";
import type {
  FlagDefinition,
  FlagDocument,
  BackupListing,
  BackupRun,
  BackupSlice,
  FlagEvaluation,
  FlagList,
  ImportResult,
  Health,
  Invalidated,
  PurgePage,
  RestoreSlice,
  RevokePage,
  Session,
  SessionCreated,
  SessionRefreshed,
  StoredFlag,
  UserSessionList,
} from "../worker/src/api-responses.ts";
import type { SessionInput } from "../worker/src/contract.ts";

type Method = "GET" | "POST" | "PUT" | "DELETE";

/** operationId → method, path (Hono's pattern) and the status that means success, as in the OpenAPI document. */
export const CLIENT_OPERATIONS = {
  getHealth: ["GET", "/health", 200],
  createSession: ["POST", "/sessions", 201],
  getSession: ["GET", "/sessions/:id", 200],
  deleteSession: ["DELETE", "/sessions/:id", 204],
  refreshSession: ["POST", "/sessions/:id/refresh", 200],
  listUserSessions: ["GET", "/users/:userId/sessions", 200],
  revokeUserSessions: ["DELETE", "/users/:userId/sessions", 200],
  getProduct: ["GET", "/api/products/:id", 200],
  invalidateProduct: ["DELETE", "/api/products/:id/cache", 200],
  purgeCache: ["DELETE", "/api/cache", 200],
  listFlags: ["GET", "/api/features", 200],
  evaluateFlag: ["GET", "/api/features/:name", 200],
  putFlag: ["PUT", "/api/features/:name", 200],
  deleteFlag: ["DELETE", "/api/features/:name", 204],
  importFlags: ["POST", "/api/features", 200],
  listBackups: ["GET", "/api/backups", 200],
  startBackup: ["POST", "/api/backups", 200],
  continueBackup: ["POST", "/api/backups/continue", 200],
  getBackup: ["GET", "/api/backups/:id", 200],
  restoreBackup: ["POST", "/api/backups/:id/restore", 200],
} as const satisfies Record<string, readonly [Method, string, number]>;
type OperationId = keyof typeof CLIENT_OPERATIONS;

export interface ApiClientOptions {
  /** e.g. https://api.example.com or http://127.0.0.1:8787 */
  baseUrl: string;
  /** Sent only to the operations that need it. */
  adminToken?: string | undefined;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Sent with every request, e.g. smoke's Cloudflare-Workers-Version-Overrides; the client's own headers win. */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

/** The Worker answered with another status than the operation's success (the `{error, code}` envelope, when there is one). */
export class ApiResponseError extends Error {
  override name = "ApiResponseError";
  constructor(
    readonly method: Method,
    readonly path: string,
    readonly status: number,
    readonly code: string | undefined,
    readonly detail: string,
  ) {
    super(`${method} ${path} answered ${status}${code ? ` (${code}: ${detail})` : detail ? `: ${detail}` : ""}`);
  }
}

/** No answer at all: refused, unresolvable, timed out. `reason` is the useful part (ECONNREFUSED…). */
export class ApiUnreachableError extends Error {
  override name = "ApiUnreachableError";
  constructor(
    readonly method: Method,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${method} ${path}: ${reason}`);
  }
}

/** Short description of a network failure: fetch hides the useful part (ECONNREFUSED…) in `cause`. */
export function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message ?? error.message;
}

interface Call {
  params?: Record<string, string>;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** The bearer token to present; admin operations present the admin token. */
  token?: string | undefined;
  /** Statuses besides success that the caller handles itself (e.g. 404 → null). */
  alsoOk?: number[];
}

export function createApiClient(options: ApiClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, "");
  const fetchImpl = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;

  async function call(id: OperationId, { params = {}, query = {}, body, token, alsoOk = [] }: Call): Promise<Response> {
    const [method, pattern, success] = CLIENT_OPERATIONS[id];
    const path = pattern.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));
    const search = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined));
    const url = `${base}${path}${search.size ? `?${search}` : ""}`;
    let response: Response;
    try {
      response = await fetchImpl(url, {
        method,
        headers: {
          ...options.headers,
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new ApiUnreachableError(method, path, describeFetchError(error));
    }
    if (response.status === success || alsoOk.includes(response.status)) return response;
    const text = await response.text().catch(() => "");
    const envelope = parseEnvelope(text);
    throw new ApiResponseError(method, path, response.status, envelope?.code, envelope?.error ?? text.slice(0, 200));
  }
  const json = async <T>(response: Response) => (await response.json()) as T;
  const admin = () => options.adminToken;

  return {
    health: async () => json<Out<typeof Health>>(await call("getHealth", {})),
    createSession: async (input: v.InferInput<typeof SessionInput>) =>
      json<Out<typeof SessionCreated>>(await call("createSession", { body: input, token: admin() })),
    /** null when the session is unknown or expired. */
    getSession: async (id: string) => {
      const response = await call("getSession", { params: { id }, alsoOk: [404] });
      return response.status === 404 ? (await response.body?.cancel(), null) : json<Out<typeof Session>>(response);
    },
    /** With the admin token, or `sessionToken`: the session ending itself (a logout). */
    deleteSession: async (id: string, { sessionToken }: { sessionToken?: string } = {}) => {
      await drain(await call("deleteSession", { params: { id }, token: sessionToken ?? admin() }));
    },
    /** Slides the expiry (never past the absolute lifetime); with the admin token, or `sessionToken`: the session itself. */
    refreshSession: async (id: string, { sessionToken }: { sessionToken?: string } = {}) =>
      json<Out<typeof SessionRefreshed>>(await call("refreshSession", { params: { id }, token: sessionToken ?? admin() })),
    /** One page of a user's live sessions (ids shortened to a prefix); follow `cursor` for more. */
    listUserSessions: async (userId: string, cursor?: string) =>
      json<Out<typeof UserSessionList>>(await call("listUserSessions", { params: { userId }, query: { cursor }, token: admin() })),
    /** Signs a user out everywhere, one page per call; repeat with the returned cursor until `complete` (`npm run revoke` does). */
    revokeUserSessions: async (userId: string, cursor?: string) =>
      json<Out<typeof RevokePage>>(await call("revokeUserSessions", { params: { userId }, query: { cursor }, token: admin() })),
    /** The origin's JSON for the product, and whether it came from the cache (X-Cache). */
    getProduct: async (id: string) => {
      const response = await call("getProduct", { params: { id } });
      return { product: await json<unknown>(response), cache: response.headers.get("x-cache") as "HIT" | "MISS" | "STALE" | null };
    },
    invalidateProduct: async (id: string) => json<Out<typeof Invalidated>>(await call("invalidateProduct", { params: { id }, token: admin() })),
    /** One page; repeat with the returned cursor until `complete` (`npm run purge` does). */
    purgeCache: async (prefix: string, cursor?: string) =>
      json<Out<typeof PurgePage>>(await call("purgeCache", { query: { prefix, cursor }, token: admin() })),
    listFlags: async () => json<Out<typeof FlagList>>(await call("listFlags", { token: admin() })),
    evaluateFlag: async (name: string, userId?: string) =>
      json<FlagEvaluation>(await call("evaluateFlag", { params: { name }, query: { userId } })),
    /** Either form: the shorthand or a flagd definition. */
    putFlag: async (name: string, flag: v.InferInput<typeof FlagDefinition>) =>
      json<Out<typeof StoredFlag>>(await call("putFlag", { params: { name }, body: flag, token: admin() })),
    /** One page of a flagd document (`npm run flags -- import` pages a whole one). */
    importFlags: async (document: v.InferInput<typeof FlagDocument>, options: { lenient?: boolean } = {}) =>
      json<Out<typeof ImportResult>>(
        await call("importFlags", { body: document, token: admin(), query: options.lenient ? { lenient: "true" } : {} }),
      ),
    deleteFlag: async (name: string) => {
      await drain(await call("deleteFlag", { params: { name }, token: admin() }));
    },
    /** The backup in progress, if any, and the newest finished ones. */
    listBackups: async () => json<Out<typeof BackupListing>>(await call("listBackups", { token: admin() })),
    /** Starts a backup and makes its first slice; `running` goes on at the next (`continueBackup`, or the cron). */
    startBackup: async () => json<Out<typeof BackupSlice>>(await call("startBackup", { token: admin() })),
    continueBackup: async () => json<Out<typeof BackupSlice>>(await call("continueBackup", { token: admin() })),
    /** A finished backup by id, or `latest`. */
    getBackup: async (id: string) => json<Out<typeof BackupRun>>(await call("getBackup", { params: { id }, token: admin() })),
    /** One slice of a restore (a dry run unless `apply`); repeat with the returned cursor until `complete` (`npm run restore` does). */
    restoreBackup: async (id: string, body: { namespace: "CONFIG" | "SESSIONS"; apply?: boolean; cursor?: string | undefined }) =>
      json<Out<typeof RestoreSlice>>(await call("restoreBackup", { params: { id }, body, token: admin() })),
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;
type Out<S extends v.GenericSchema> = v.InferOutput<S>;

const drain = (response: Response) => response.body?.cancel();

function parseEnvelope(text: string): { error: string; code: string } | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof body.error === "string" && typeof body.code === "string") return { error: body.error, code: body.code };
  } catch {
    // not JSON
  }
  return undefined;
}
