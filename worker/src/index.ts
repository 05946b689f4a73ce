import { createApp } from "./app";
import type { Env } from "./env";

export { type AppOptions, createApp } from "./app";
export { validateSession } from "./middleware/validate-session";

const app = createApp();

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;
