import { Hono } from "hono/tiny";
import { parseAdminTokens } from "../contract";
import type { AppEnv, Env } from "../env";
import { requireScope } from "../middleware/admin";
import { json } from "../respond";

const health = (env: Env) => ({
  status: "ok" as const,
  environment: env.ENVIRONMENT ?? "local",
  version: __BUILD_VERSION__,
  bundleSha256: env.BUNDLE_SHA256 ?? null,
  versionId: env.CF_VERSION_METADATA?.id ?? null,
  versionTag: env.CF_VERSION_METADATA?.tag ?? null,
});

export const healthRoutes = () =>
  new Hono<AppEnv>()
    .get("/health", (c) => json(health(c.env)))
    // Names and scopes only: what an operator checks after a rotation, never a token.
    .get("/health/details", requireScope("read"), (c) => {
      const named = parseAdminTokens(c.env.ADMIN_TOKENS);
      return json({
        ...health(c.env),
        adminTokens: "tokens" in named ? named.tokens.map(({ name, scopes }) => ({ name, scopes })) : [],
        adminTokenPrevious: Boolean(c.env.ADMIN_TOKEN_PREVIOUS),
      });
    });
