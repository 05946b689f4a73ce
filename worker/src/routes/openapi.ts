import { Hono } from "hono/tiny";
import type { AppEnv } from "../env";

/** The OpenAPI document, deflated and base64-encoded by the build (worker/openapi-build.ts). */
declare const __OPENAPI_DEFLATED__: string;

/** Rarely called, so it is inflated per request rather than kept in the isolate's memory. */
export const openApiRoutes = () =>
  new Hono<AppEnv>().get("/openapi.json", (c) => {
    const deflated = Uint8Array.from(atob(__OPENAPI_DEFLATED__), (char) => char.charCodeAt(0));
    const json = new Blob([deflated]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return c.body(json, 200, { "Content-Type": "application/json" });
  });
