import { Hono } from "hono";
import type { AppEnv, Env } from "./env";

const app = new Hono<AppEnv>();
app.get("/health", (c) => c.json({ status: "ok", environment: c.env.ENVIRONMENT ?? "local", version: typeof __BUILD_VERSION__ === "string" ? __BUILD_VERSION__ : "dev" }));

export default app satisfies ExportedHandler<Env>;
