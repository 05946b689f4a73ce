import { createApp } from "./app";
import { onCron } from "./backup/schedule";
import type { Env } from "./env";

export { type AppOptions, createApp } from "./app";
export { validateSession } from "./middleware/validate-session";

const app = createApp();

export default {
  fetch: app.fetch,
  // Awaited, not waitUntil: a failed slice fails the invocation, and Cron Events shows it.
  async scheduled(controller, env) {
    await onCron(controller.cron, env);
  },
} satisfies ExportedHandler<Env>;
