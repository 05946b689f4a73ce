import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { EvaluationQuery, FlagParams, USER_ID_MAX_LENGTH } from "../api-schemas";
import { FLAG_NAME_PATTERN, Flag } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { evaluateFlag } from "../evaluate";
import { requireScope } from "../middleware/admin";
import { rateLimit } from "../middleware/rate-limit";
import { check, jsonBody, validate } from "../middleware/validate";
import { empty, json } from "../respond";
import { FlagCache, flagStore } from "../stores/flags";
import { ofrepRoutes } from "./ofrep";
import type { Deps } from "../app";

/** Flags declared as code in the stack config belong to `pulumi up`, not to this API. */
function refuseIfManaged(managedFlags: string | undefined, name: string) {
  if (managedFlags?.split(",").some((managed) => managed.trim() === name)) {
    throw new ApiError(409, "managed_by_config", `flag ${name} is declared in the stack config; change it there and run pulumi up`);
  }
}

export function flagRoutes({ kvTimeoutMs, now }: Deps) {
  // Evaluation runs on every product request, so a flag read is trusted for
  // FLAG_ISOLATE_TTL_SECONDS: a change made through another isolate shows
  // here within that bound plus KV's own ~60 s propagation.
  const cache = new FlagCache(now);
  /** A flag through the isolate's cache: no KV operation while it is trusted, one read of this request's own when it is not. */
  const readFlag = (c: Context<AppEnv>, name: string) => cache.read(name, () => flagStore(c.env.CONFIG, kvTimeoutMs).get(name));

  return new Hono<AppEnv>()
    // Admin only: flags hold user ids.
    .get("/api/features", requireScope("read"), async (c) => json(await flagStore(c.env.CONFIG, kvTimeoutMs).list()))
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
      const answer = (flag: Flag | undefined) => json({ name, ...evaluateFlag(name, flag, userId) });
      const cached = cache.get(name);
      return cached.hit ? answer(cached.flag) : readFlag(c, name).then(answer);
    })
    .put("/api/features/:name", requireScope("flags:write"), validate("param", FlagParams), jsonBody(Flag), async (c) => {
      const { name } = c.req.valid("param");
      refuseIfManaged(c.env.MANAGED_FLAGS, name);
      const flag = c.req.valid("json");
      await flagStore(c.env.CONFIG, kvTimeoutMs).put(name, flag);
      cache.set(name, flag);
      return json({ name, ...flag });
    })
    .delete("/api/features/:name", requireScope("flags:write"), validate("param", FlagParams), async (c) => {
      const { name } = c.req.valid("param");
      refuseIfManaged(c.env.MANAGED_FLAGS, name);
      await flagStore(c.env.CONFIG, kvTimeoutMs).delete(name);
      cache.set(name, undefined);
      return empty(204);
    })
    // The same flags, rules and isolate cache, spoken as OpenFeature's remote evaluation protocol.
    .route("/", ofrepRoutes({ kvTimeoutMs, readFlag }));
}
