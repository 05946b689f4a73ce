import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { json } from "./respond";

/** Machine codes of the error envelope, by HTTP status. */
const CODES: Partial<Record<number, string>> = {
  400: "invalid_request",
  401: "unauthorized",
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
  if (err instanceof ApiError) return json({ error: err.message, code: err.code }, err.status, err.headers);
  if (err instanceof HTTPException && err.status < 500) {
    const status = err.status as ContentfulStatusCode;
    return json({ error: err.message || "request rejected", code: CODES[status] ?? "invalid_request" }, status);
  }
  console.error(`unhandled error on ${c.req.method} ${c.req.path}:`, err);
  return json({ error: "internal error", code: "internal_error" }, 500);
}
