/**
 * OpenFeature Remote Evaluation Protocol (OFREP 0.3.0): the flag API an
 * OpenFeature SDK with an OFREP provider speaks, server-side (one flag per
 * call) and web (every flag at once, polled with ETag). Public, like
 * `GET /api/features/:name`: an answer carries a flag's value and metadata,
 * never its allow-list or rules. Errors use OFREP's shape, not the envelope
 * (see ofrepErrorResponse in ../errors).
 */
import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono/tiny";
import { validator } from "hono/validator";
import * as v from "valibot";
import { OfrepRequest } from "../api-schemas";
import type { OfrepEvaluation } from "../api-responses";
import { describeIssues, type Flag, FLAG_NAME_PATTERN } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { evaluateFlag } from "../evaluate";
import { rateLimit } from "../middleware/rate-limit";
import { isJsonMediaType } from "../middleware/validate";
import { flagStore } from "../stores/flags";

export const OFREP_BASE = "/ofrep/v1/evaluate/flags";

interface OfrepDeps {
  kvTimeoutMs: number;
  /** The flag routes' cached read, so both APIs share one isolate cache and one staleness bound. */
  readFlag: (c: Context<AppEnv>, name: string) => Promise<Flag | undefined>;
}

/**
 * The request body: a JSON object whose `context` (optional, `{}` when left
 * out) is an object with a string `targetingKey`. Anything that is not such a
 * JSON object is PARSE_ERROR; a context of the wrong shape is INVALID_CONTEXT.
 */
const ofrepBody = () =>
  validator("json", (value, c) => {
    if (!isJsonMediaType(c.req.header("Content-Type"))) {
      throw new ApiError(400, "PARSE_ERROR", "the body must be JSON sent with Content-Type: application/json");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ApiError(400, "PARSE_ERROR", "the body must be a JSON object");
    const parsed = v.safeParse(OfrepRequest, value);
    if (!parsed.success) throw new ApiError(400, "INVALID_CONTEXT", `invalid context: ${describeIssues(parsed.issues)}`);
    return parsed.output;
  });

/** One flag for one caller, in OFREP's terms: a boolean value, variant on/off, the flag's primitive metadata. */
export function ofrepEvaluation(key: string, flag: Flag, targetingKey: string | undefined): OfrepEvaluation {
  const { enabled, reason } = evaluateFlag(key, flag, targetingKey);
  const metadata = Object.fromEntries(
    Object.entries(flag.metadata ?? {}).filter((entry): entry is [string, string | number | boolean] =>
      ["string", "number", "boolean"].includes(typeof entry[1]),
    ),
  );
  return { key, value: enabled, reason, variant: enabled ? "on" : "off", metadata };
}

/**
 * Web providers run in browsers, usually on another origin than the Worker:
 * the JSON POST needs a preflight, and the provider must be able to read ETag.
 * Public routes, so any origin, and no credentials. Written out rather than
 * Hono's cors(), which costs 1.4 KB of a bundle near its 24 KiB gzip budget
 * for options these two routes do not need.
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

export function ofrepRoutes({ kvTimeoutMs, readFlag }: OfrepDeps) {
  return (
    new Hono<AppEnv>()
      .use(OFREP_BASE, browserAccess)
      .use(`${OFREP_BASE}/*`, browserAccess)
      // Server providers: one flag per call, through the isolate's flag cache (0 KV operations while it is trusted).
      .post(`${OFREP_BASE}/:key`, rateLimit("flagEvaluations"), ofrepBody(), async (c) => {
        const key = c.req.param("key");
        const targetingKey = c.req.valid("json").context?.targetingKey;
        // A key that cannot be a flag name is not looked up; a missing flag tells the SDK to use the caller's default.
        const flag = FLAG_NAME_PATTERN.test(key) ? await readFlag(c, key) : undefined;
        if (!flag) throw new ApiError(404, "FLAG_NOT_FOUND", `flag ${key} was not found`);
        return c.json(ofrepEvaluation(key, flag, targetingKey));
      })
      // Web providers: every flag for one static context, one KV list per 1000 flags. The ETag is
      // the hash of the answer, so it changes exactly when a flag set change or another context
      // changes what this caller sees; a poll that presents it gets an empty 304.
      .post(OFREP_BASE, rateLimit("flagEvaluations"), ofrepBody(), async (c) => {
        const targetingKey = c.req.valid("json").context?.targetingKey;
        const flags = await flagStore(c.env.CONFIG, kvTimeoutMs).list();
        const body = JSON.stringify({ flags: flags.map(({ name, flag }) => ofrepEvaluation(name, flag, targetingKey)) });
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
