import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { OFREP_ERROR_CODES, type OfrepErrorCode } from "./api-schemas";
import { json } from "./respond";

/** Machine codes of the error envelope, by HTTP status. */
const CODES: Partial<Record<number, string>> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "insufficient_scope",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  502: "origin_error",
  503: "unavailable",
};

/** Seconds a client should wait before retrying a 503. */
export const RETRY_AFTER_SECONDS = 5;

/** The one error type the Worker throws; `onError` turns it into `{error, code}`. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(status, { message });
  }
}

export const unavailable = (message: string) =>
  new ApiError(503, "unavailable", message, { "Retry-After": String(RETRY_AFTER_SECONDS) });

/**
 * Every failure becomes the JSON envelope. Hono's own HTTPExceptions (such as
 * a malformed JSON body) keep their status; anything else is a bug: it is
 * logged and answered with a bare 500 that leaks no detail.
 */
export function errorResponse(err: Error, c: Context) {
  if (c.req.path.startsWith(OFREP_PATH)) return ofrepErrorResponse(err, c);
  if (err instanceof ApiError) return json({ error: err.message, code: err.code }, err.status, err.headers);
  if (err instanceof HTTPException && err.status < 500) {
    const status = err.status as ContentfulStatusCode;
    return json({ error: err.message || "request rejected", code: CODES[status] ?? "invalid_request" }, status);
  }
  console.error(`unhandled error on ${c.req.method} ${loggablePath(c.req.path)}:`, err);
  return json({ error: "internal error", code: "internal_error" }, 500);
}

/** A path as logs may show it: a session id in it is a credential, so it becomes `:id`. */
export const loggablePath = (path: string) => path.replace(/^\/sessions\/[^/]+/, "/sessions/:id");

/** Where OpenFeature's remote evaluation protocol is served; its clients read OFREP's error shape. */
const OFREP_PATH = "/ofrep/";
const SINGLE_FLAG_PATH = /^\/ofrep\/v1\/evaluate\/flags\/([^/]+)$/;

/**
 * OFREP's error shape, `{key?, errorCode, errorDetails}` (key on the
 * single-flag route), with the status and headers (Retry-After, Allow) the
 * envelope would have had. A route's own codes (PARSE_ERROR, INVALID_CONTEXT,
 * FLAG_NOT_FOUND) are kept; a malformed body is PARSE_ERROR; the rest is GENERAL.
 */
function ofrepErrorResponse(err: Error, c: Context) {
  const encodedKey = SINGLE_FLAG_PATH.exec(c.req.path)?.[1];
  const key = encodedKey === undefined ? {} : { key: safeDecode(encodedKey) };
  if (!(err instanceof ApiError) && !(err instanceof HTTPException && err.status < 500)) {
    console.error(`unhandled error on ${c.req.method} ${loggablePath(c.req.path)}:`, err);
    return json({ ...key, errorCode: "GENERAL", errorDetails: "internal error" }, 500);
  }
  const own = err instanceof ApiError && (OFREP_ERROR_CODES as readonly string[]).includes(err.code);
  const errorCode: OfrepErrorCode = own ? (err.code as OfrepErrorCode) : err.status === 400 ? "PARSE_ERROR" : "GENERAL";
  const headers = err instanceof ApiError ? err.headers : {};
  return json({ ...key, errorCode, errorDetails: err.message || "request rejected" }, err.status as ContentfulStatusCode, headers);
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
