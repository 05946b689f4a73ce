import { Hono } from "hono/tiny";
import type { AppEnv } from "../env";
import { json } from "../respond";

export const healthRoutes = () =>
  new Hono<AppEnv>().get("/health", (c) =>
    json({
      status: "ok",
      environment: c.env.ENVIRONMENT ?? "local",
      version: __BUILD_VERSION__,
      bundleSha256: c.env.BUNDLE_SHA256 ?? null,
      versionId: c.env.CF_VERSION_METADATA?.id ?? null,
      versionTag: c.env.CF_VERSION_METADATA?.tag ?? null,
    }),
  );
