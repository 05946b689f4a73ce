import { Hono } from "hono/tiny";
import { EvaluationQuery, FlagParams } from "../api-schemas";
import { Flag } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { evaluateFlag } from "../evaluate";
import { requireAdmin } from "../middleware/admin";
import { jsonBody, validate } from "../middleware/validate";
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
  /** A flag through the isolate's cache: no KV operation while it is trusted. */
  async function readFlag(config: KVNamespace, name: string) {
    const cached = cache.get(name);
    if (cached.hit) return cached.flag;
    const flag = await flagStore(config, kvTimeoutMs).get(name);
    cache.set(name, flag);
    return flag;
  }

  return new Hono<AppEnv>()
    // Admin only: flags hold user ids.
    .get("/api/features", requireAdmin(), async (c) => c.json(await flagStore(c.env.CONFIG, kvTimeoutMs).list()))
    .get("/api/features/:name", validate("param", FlagParams), validate("query", EvaluationQuery), async (c) => {
      const { name } = c.req.valid("param");
      const { userId } = c.req.valid("query");
      return c.json({ name, ...evaluateFlag(name, await readFlag(c.env.CONFIG, name), userId) });
    })
    .put("/api/features/:name", requireAdmin(), validate("param", FlagParams), jsonBody(Flag), async (c) => {
      const { name } = c.req.valid("param");
      refuseIfManaged(c.env.MANAGED_FLAGS, name);
      const flag = c.req.valid("json");
      await flagStore(c.env.CONFIG, kvTimeoutMs).put(name, flag);
      cache.set(name, flag);
      return c.json({ name, ...flag });
    })
    .delete("/api/features/:name", requireAdmin(), validate("param", FlagParams), async (c) => {
      const { name } = c.req.valid("param");
      refuseIfManaged(c.env.MANAGED_FLAGS, name);
      await flagStore(c.env.CONFIG, kvTimeoutMs).delete(name);
      cache.set(name, undefined);
      return c.body(null, 204);
    })
    // The same flags, rules and isolate cache, spoken as OpenFeature's remote evaluation protocol.
    .route("/", ofrepRoutes({ kvTimeoutMs, readFlag }));
}
