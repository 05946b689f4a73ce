import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { EvaluationQuery, FlagListQuery, FlagParams, ImportQuery, USER_ID_MAX_LENGTH } from "../api-schemas";
import { Flag, FLAG_NAME_PATTERN, type FlagDefinition, IMPORT_PAGE_MAX_ENTRIES } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import {
  canonicalJson,
  definitionsOf,
  describeProblem,
  evaluate,
  evaluatorRefs,
  type FlagDocument,
  inlineEvaluators,
  isShorthand,
  type Problem,
  readEvaluator,
  validateDocument,
} from "../flags";
import { evaluateFlag as evaluateShorthand } from "../evaluate";
import { requireScope } from "../middleware/admin";
import { rateLimit } from "../middleware/rate-limit";
import { check, isJsonMediaType, validate } from "../middleware/validate";
import { empty, json } from "../respond";
import { FlagCache, type FlagSet, FlagSetCache, flagStore } from "../stores/flags";
import { ofrepRoutes } from "./ofrep";
import type { Deps } from "../app";

/** Flags declared as code in the stack config belong to `pulumi up`, not to this API. */
function refuseIfManaged(managedFlags: string | undefined, names: string[]) {
  const managed = new Set(managedFlags?.split(",").map((name) => name.trim()) ?? []);
  const refused = names.filter((name) => managed.has(name));
  if (refused.length > 0) {
    throw new ApiError(409, "managed_by_config", `flag${refused.length > 1 ? "s" : ""} ${refused.join(", ")} ${refused.length > 1 ? "are" : "is"} declared in the stack config; change it there and run pulumi up`);
  }
}


const invalid = (problems: Problem[]) => new ApiError(400, "invalid_request", problems.map(describeProblem).join("; "));

/** A JSON object body, read without a schema (flag definitions are checked by flagd's schema). */
async function jsonObjectBody(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  if (!isJsonMediaType(c.req.header("Content-Type"))) throw new ApiError(400, "invalid_request", "request body must be JSON sent with Content-Type: application/json");
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError(400, "invalid_request", "request body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "invalid_request", "request body must be a JSON object");
  return body as Record<string, unknown>;
}

/** GET /api/features/:name's answer: today's `{name, enabled, reason}` for boolean flags, plus `value` and `variant` for typed ones. */
function answerOf(name: string, flag: FlagDefinition | undefined, userId: string | undefined) {
  // The shorthand, the hot case, exactly as before the engine: no context object, no metadata copy.
  if (!flag || isShorthand(flag)) return { name, ...evaluateShorthand(name, flag, userId) };
  const resolution = evaluate(name, flag, userId === undefined ? {} : { targetingKey: userId });
  const enabled = typeof resolution.value === "boolean" ? resolution.value : resolution.value !== undefined;
  return {
    name,
    enabled,
    reason: resolution.reason,
    ...(resolution.value === undefined ? {} : { value: resolution.value, variant: resolution.variant }),
    ...(resolution.errorCode ? { errorCode: resolution.errorCode, errorDetails: resolution.errorMessage } : {}),
  };
}

export function flagRoutes({ kvTimeoutMs, now }: Deps) {
  // Evaluation runs on every product request, so a flag read is trusted for
  // FLAG_ISOLATE_TTL_SECONDS: a change made through another isolate shows
  // here within that bound plus KV's own ~60 s propagation.
  const cache = new FlagCache(now);
  const flagSets = new FlagSetCache(now);
  /** A flag from KV with the evaluators it refers to inlined (one more get per evaluator), ready to cache. */
  const loadFlag = async (c: Context<AppEnv>, name: string): Promise<FlagDefinition | undefined> => {
    const store = flagStore(c.env.CONFIG, kvTimeoutMs);
    const flag = await store.get(name);
    return flag && withEvaluators(c, flag);
  };
  const withEvaluators = async (c: Context<AppEnv>, flag: FlagDefinition): Promise<FlagDefinition> => {
    if (isShorthand(flag)) return flag;
    const refs = [...evaluatorRefs(flag.targeting)];
    if (refs.length === 0) return flag;
    const store = flagStore(c.env.CONFIG, kvTimeoutMs);
    const rules = await Promise.all(refs.map((ref) => store.getEvaluator(ref)));
    return inlineEvaluators(flag, Object.fromEntries(refs.flatMap((ref, i) => (rules[i] ? [[ref, rules[i]]] : []))));
  };
  /**
   * A flag through the isolate's cache: no KV operation while it is trusted,
   * else this request's own read (the flag, and each evaluator it refers to).
   */
  const readFlag = (c: Context<AppEnv>, name: string) => cache.read(name, () => loadFlag(c, name));
  /** Every flag and evaluator, from the isolate's copy while it is trusted, else from KV (lists), then kept if no write came between. */
  const readFlagSet = async (c: Context<AppEnv>): Promise<FlagSet> => {
    const cached = flagSets.get();
    if (cached) return cached;
    const generation = flagSets.generation;
    const store = flagStore(c.env.CONFIG, kvTimeoutMs);
    const flags = await store.list();
    // Evaluators cost a second listing only when some flag refers to one.
    const referred = flags.some(({ flag }) => !isShorthand(flag) && evaluatorRefs(flag.targeting).size > 0);
    const set = { flags, evaluators: referred ? await store.listEvaluators() : {} };
    flagSets.set(set, generation);
    return set;
  };
  /** After a write through this isolate: its flags answer from what was written. */
  const forget = () => flagSets.drop();

  return new Hono<AppEnv>()
    // Admin only: flags hold user ids. `?format=flagd` answers one flagd document (what `npm run flags -- export` writes).
    .get("/api/features", requireScope("read"), validate("query", FlagListQuery), async (c) => {
      const store = flagStore(c.env.CONFIG, kvTimeoutMs);
      if (c.req.valid("query").format !== "flagd") return json(await store.list());
      const [flags, evaluators] = await Promise.all([store.list(), store.listEvaluators()]);
      const document: FlagDocument = { flags: Object.fromEntries(flags.map(({ name, flag }) => [name, flag])) };
      if (Object.keys(evaluators).length > 0) document.$evaluators = evaluators;
      return json(document);
    })
    // The hottest route: one handler, validating inline, and synchronous when
    // the flag is cached, so a hot evaluation awaits nothing. Valid input is
    // recognised by the schemas' own rules (pattern, length) without valibot's
    // allocations (bench/analysis.md); anything else goes through the schema,
    // which throws the same 400 as the `validate` middleware.
    .get("/api/features/:name", rateLimit("flagEvaluations"), (c): Response | Promise<Response> => {
      const name = c.req.param("name");
      const userId = c.req.query("userId");
      if (!FLAG_NAME_PATTERN.test(name)) check("param", FlagParams, { name });
      if (userId !== undefined && userId.length > USER_ID_MAX_LENGTH) check("query", EvaluationQuery, { userId });
      const answer = (flag: FlagDefinition | undefined) => json(answerOf(name, flag, userId));
      const cached = cache.get(name);
      return cached.hit ? answer(cached.flag) : readFlag(c, name).then(answer);
    })
    // Either form: the shorthand, or a flagd definition checked against flagd's schema.
    .put("/api/features/:name", requireScope("flags:write"), validate("param", FlagParams), async (c) => {
      const { name } = c.req.valid("param");
      const body = await jsonObjectBody(c);
      // The shorthand keeps its own schema and messages; a flagd definition is checked with flagd's schema.
      if (!("state" in body)) check("json", Flag, body);
      const { errors } = validateDocument({ flags: { [name]: body } });
      if (errors.length > 0) throw invalid(errors);
      refuseIfManaged(c.env.MANAGED_FLAGS, [name]);
      const flag = definitionsOf({ flags: { [name]: body as FlagDefinition } })[name]!;
      await flagStore(c.env.CONFIG, kvTimeoutMs).put(name, flag);
      cache.set(name, await withEvaluators(c, flag));
      forget();
      return json({ name, ...flag });
    })
    // One page of a flagd document: every flag and evaluator is checked before any is written.
    // `?lenient=true` loads rules flagd's schema refuses, as flagd does (a rule that cannot run evaluates as PARSE_ERROR); answers the warnings.
    .post("/api/features", requireScope("flags:write"), validate("query", ImportQuery), async (c) => {
      const document = await jsonObjectBody(c);
      const lenient = c.req.valid("query").lenient === "true";
      const { errors, warnings } = validateDocument(document, { lenient });
      if (errors.length > 0) throw invalid(errors);
      const flags = definitionsOf(document as unknown as FlagDocument);
      const evaluators = (document.$evaluators ?? {}) as Record<string, unknown>;
      const entries = Object.keys(flags).length + Object.keys(evaluators).length;
      if (entries > IMPORT_PAGE_MAX_ENTRIES) {
        throw new ApiError(400, "invalid_request", `a page may hold at most ${IMPORT_PAGE_MAX_ENTRIES} flags and evaluators (KV allows 1000 operations per request); this one holds ${entries}`);
      }
      const store = flagStore(c.env.CONFIG, kvTimeoutMs);
      // A flag declared as code may appear unchanged (re-importing an export): it is left as it is.
      // Changed, it is refused like any write to it.
      const managed = new Set(c.env.MANAGED_FLAGS?.split(",").map((name) => name.trim()) ?? []);
      for (const name of Object.keys(flags).filter((name) => managed.has(name))) {
        const stored = await store.get(name);
        if (canonicalJson(stored) !== canonicalJson(flags[name])) refuseIfManaged(c.env.MANAGED_FLAGS, [name]);
        delete flags[name];
      }
      const writable = { ...evaluators };
      for (const name of Object.keys(evaluators).filter((name) => managed.has(`$${name}`))) {
        const stored = await store.getEvaluator(name);
        if (canonicalJson(stored) !== canonicalJson(evaluators[name])) {
          throw new ApiError(409, "managed_by_config", `evaluator ${name} is declared in the stack config; change it there and run pulumi up`);
        }
        delete writable[name];
      }
      // Evaluators first, so a flag that refers to one never evaluates without it.
      for (const [name, rule] of Object.entries(writable)) await store.putEvaluator(name, readEvaluator(rule)!);
      for (const [name, flag] of Object.entries(flags)) {
        await store.put(name, flag);
        cache.set(name, isShorthand(flag) ? flag : inlineEvaluators(flag, evaluators));
      }
      forget();
      return json({ flags: Object.keys(flags).length, evaluators: Object.keys(writable).length, warnings: warnings.map(describeProblem) });
    })
    .delete("/api/features/:name", requireScope("flags:write"), validate("param", FlagParams), async (c) => {
      const { name } = c.req.valid("param");
      refuseIfManaged(c.env.MANAGED_FLAGS, [name]);
      await flagStore(c.env.CONFIG, kvTimeoutMs).delete(name);
      cache.set(name, undefined);
      forget();
      return empty(204);
    })
    // The same flags, rules and isolate cache, spoken as OpenFeature's remote evaluation protocol.
    .route("/", ofrepRoutes({ readFlag, readFlagSet, now }));
}
