import type { MiddlewareHandler, ValidationTargets } from "hono";
import { validator } from "hono/validator";
import * as v from "valibot";
import { describeIssues } from "../contract";
import { ApiError } from "../errors";

type Target = "json" | "param" | "query";
const WHAT: Record<Target, string> = { json: "request body", param: "path", query: "query string" };
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;
export const isJsonMediaType = (contentType: string | undefined) => JSON_MEDIA_TYPE.test(contentType ?? "");

/**
 * Validates one part of the request with a valibot schema, so the handler
 * reads typed input with `c.req.valid(target)`. Anything invalid, including a
 * JSON body sent without a JSON Content-Type (Hono would see it as `{}`),
 * is a 400 `invalid_request` naming the field; a body must be a JSON object.
 */
export function validate<T extends Target, S extends v.GenericSchema>(
  target: T,
  schema: S,
): MiddlewareHandler<any, string, { in: { [K in T]: v.InferInput<S> }; out: { [K in T]: v.InferOutput<S> } }> {
  return validator(target as keyof ValidationTargets, (value, c) => {
    if (target === "json" && !isJsonMediaType(c.req.header("Content-Type"))) {
      throw new ApiError(400, "invalid_request", "request body must be JSON sent with Content-Type: application/json");
    }
    // Valibot's object schemas also accept arrays.
    if (target === "json" && (typeof value !== "object" || value === null || Array.isArray(value))) {
      throw new ApiError(400, "invalid_request", "request body must be a JSON object");
    }
    return check(target, schema, value);
  }) as MiddlewareHandler;
}

/**
 * The same check inside a handler, for the hot read routes: a validator is a
 * middleware layer of its own, and a route with one handler skips Hono's
 * compose (bench/analysis.md). Throws the same 400 as `validate`.
 */
export function check<S extends v.GenericSchema>(target: Target, schema: S, value: unknown): v.InferOutput<S> {
  const parsed = v.safeParse(schema, value);
  if (!parsed.success) throw new ApiError(400, "invalid_request", `invalid ${WHAT[target]}: ${describeIssues(parsed.issues.map(readable))}`);
  return parsed.output;
}

/**
 * Valibot's wording, made to read like the schemas' own messages: a strict
 * object reports a field it does not know as "Expected never", and a missing
 * field as "Invalid key: Expected "name" but received undefined".
 */
function readable(issue: v.BaseIssue<unknown>): v.BaseIssue<unknown> {
  if (issue.expected === "never") return { ...issue, message: "unknown field" };
  if (issue.type.endsWith("object") && issue.received === "undefined" && issue.path?.length) return { ...issue, message: "is required" };
  return issue;
}

export const jsonBody = <S extends v.GenericSchema>(schema: S) => validate("json", schema);
