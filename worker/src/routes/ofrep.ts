/**
 * OpenFeature Remote Evaluation Protocol (OFREP 0.3.0): the flag API an
 * OpenFeature SDK with an OFREP provider speaks, server-side (one flag per
 * call) and web (every flag at once, polled with ETag). Public, like
 * `GET /api/features/:name`: an answer carries a flag's value and metadata,
 * never its rules. Errors use OFREP's shape, not the envelope (see
 * ofrepErrorResponse in ../errors).
 *
 * Typed values with flagd's reasons (STATIC, TARGETING_MATCH, DEFAULT,
 * DISABLED, and SPLIT for the shorthand's rollouts) and error codes
 * (FLAG_NOT_FOUND 404, PARSE_ERROR 400, GENERAL 500). As in flagd's OFREP
 * service, a request with no body or no `context` is evaluated with an empty
 * context; an answer that falls to the caller's code default (a DISABLED flag,
 * or no default variant) carries no value and no variant.
 */
import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono/tiny";
import * as v from "valibot";
import { OfrepRequest } from "../api-schemas";
import type { OfrepEvaluation } from "../api-responses";
import { describeIssues, type FlagDefinition, FLAG_NAME_PATTERN } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { evaluate, type EvaluationContext, type Resolution } from "../flags";
import { rateLimit } from "../middleware/rate-limit";
import { isJsonMediaType } from "../middleware/validate";
import type { FlagSet } from "../stores/flags";

export const OFREP_BASE = "/ofrep/v1/evaluate/flags";

interface OfrepDeps {
  /** The flag routes' cached read, so both APIs share one isolate cache and one staleness bound. */
  readFlag: (c: Context<AppEnv>, name: string) => Promise<FlagDefinition | undefined>;
  /** Every flag and evaluator, from the isolate's copy while it is trusted. */
  readFlagSet: (c: Context<AppEnv>) => Promise<FlagSet>;
  now: () => number;
}

/**
 * The evaluation context of a request. No body, or a body without `context`,
 * is an empty context (flagd's OFREP service does the same). A body that is
 * not a JSON object is PARSE_ERROR; a `context` that is not an object, or a
 * `targetingKey` that is not a string, is INVALID_CONTEXT.
 */
async function contextOf(c: Context<AppEnv>): Promise<EvaluationContext> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  if (!isJsonMediaType(c.req.header("Content-Type"))) {
    throw new ApiError(400, "PARSE_ERROR", "the body must be JSON sent with Content-Type: application/json");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, "PARSE_ERROR", "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ApiError(400, "PARSE_ERROR", "the body must be a JSON object");
  const parsed = v.safeParse(OfrepRequest, value);
  if (!parsed.success) throw new ApiError(400, "INVALID_CONTEXT", `invalid context: ${describeIssues(parsed.issues)}`);
  return (parsed.output.context ?? {}) as EvaluationContext;
}

/** A successful evaluation in OFREP's terms; value and variant left out when the caller's default applies. */
function success(key: string, resolution: Resolution): OfrepEvaluation {
  return {
    key,
    reason: resolution.reason as OfrepEvaluation["reason"],
    ...(resolution.value === undefined ? {} : { value: resolution.value, variant: resolution.variant }),
    metadata: resolution.metadata,
  } as OfrepEvaluation;
}

const STATUS = { PARSE_ERROR: 400, GENERAL: 500 } as const;

/**
 * Web providers run in browsers, usually on another origin than the Worker:
 * the JSON POST needs a preflight, and the provider must be able to read ETag.
 * Public routes, so any origin, and no credentials. Written out rather than
 * Hono's cors(), which costs 1.4 KB for options these two routes do not need.
 */
const browserAccess: MiddlewareHandler<AppEnv> = async function browserAccess(c, next) {
  if (c.req.method === "OPTIONS") {
    const requested = c.req.header("Access-Control-Request-Headers");
    return c.body(null, 204, {
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Allow-Methods": "POST",
      ...(requested ? { "Access-Control-Allow-Headers": requested } : {}),
      "Access-Control-Max-Age": "86400",
    });
  }
  await next();
  c.header("Access-Control-Allow-Origin", "*");
  c.header("Access-Control-Expose-Headers", "ETag, Retry-After");
};

export function ofrepRoutes({ readFlag, readFlagSet, now }: OfrepDeps) {
  return (
    new Hono<AppEnv>()
      .use(OFREP_BASE, browserAccess)
      .use(`${OFREP_BASE}/*`, browserAccess)
      // Server providers: one flag per call, through the isolate's flag cache (0 KV operations while it is trusted).
      .post(`${OFREP_BASE}/:key`, rateLimit("flagEvaluations"), async (c) => {
        const key = c.req.param("key");
        const context = await contextOf(c);
        // A key that cannot be a flag name is not looked up; a missing flag tells the SDK to use the caller's default.
        const flag = FLAG_NAME_PATTERN.test(key) ? await readFlag(c, key) : undefined;
        if (!flag) throw new ApiError(404, "FLAG_NOT_FOUND", `flag ${key} was not found`);
        const resolution = evaluate(key, flag, context, { now: now() });
        if (resolution.errorCode) throw new ApiError(STATUS[resolution.errorCode], resolution.errorCode, resolution.errorMessage ?? resolution.errorCode);
        return c.json(success(key, resolution));
      })
      // Web providers: every flag for one static context, from the isolate's copy of the flag set
      // (KV lists at most once per trust window per isolate). The ETag is the hash of the answer, so
      // it changes exactly when a flag change or another context changes what this caller sees; a
      // poll that presents it gets an empty 304.
      .post(OFREP_BASE, rateLimit("flagEvaluations"), async (c) => {
        const context = await contextOf(c);
        const { flags, evaluators } = await readFlagSet(c);
        const at = now();
        const answers = flags.map(({ name, flag }) => {
          const resolution = evaluate(name, flag, context, { evaluators, now: at });
          return resolution.errorCode
            ? { key: name, errorCode: resolution.errorCode, errorDetails: resolution.errorMessage ?? resolution.errorCode }
            : success(name, resolution);
        });
        const body = JSON.stringify({ flags: answers });
        const etag = await entityTag(body);
        if (matches(c.req.header("If-None-Match"), etag)) return c.body(null, 304, { ETag: etag });
        return c.body(body, 200, { "Content-Type": "application/json", ETag: etag });
      })
  );
}

async function entityTag(body: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  return `"${Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
}

/** If-None-Match holds a list of tags, possibly weak (W/"…"), or `*` (RFC 9110 §13.1.2, weak comparison). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === "*") return true;
  return ifNoneMatch.match(/"[^"]*"/g)?.includes(etag) ?? false;
}
