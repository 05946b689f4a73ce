import { Hono } from "hono/tiny";
import { PageQuery, UserParams } from "../api-schemas";
import type { AppEnv } from "../env";
import { requireScope } from "../middleware/admin";
import { validate } from "../middleware/validate";
import { maxLifetimeSeconds, sessionStore } from "../stores/sessions";
import type { Deps } from "../app";

/**
 * A user's sessions, for support staff and "sign out everywhere". Both read
 * the per-user index (one KV list per page), never a session itself, and
 * never show a full session id.
 */
export const userSessionRoutes = ({ kvTimeoutMs, now, revokePageSize }: Deps) =>
  new Hono<AppEnv>()
    .get("/users/:userId/sessions", requireScope("sessions:revoke"), validate("param", UserParams), validate("query", PageQuery), async (c) => {
      const { userId } = c.req.valid("param");
      const { cursor } = c.req.valid("query");
      const page = await sessionStore(c.env.SESSIONS, kvTimeoutMs).listByUser(userId, cursor, now(), maxLifetimeSeconds(c.env));
      return c.json(page.cursor ? { sessions: page.sessions, cursor: page.cursor } : { sessions: page.sessions });
    })
    // One bounded page per call (a Worker invocation may make 1000 KV operations);
    // the caller repeats with the returned cursor until `complete` (npm run revoke does).
    .delete("/users/:userId/sessions", requireScope("sessions:revoke"), validate("param", UserParams), validate("query", PageQuery), async (c) => {
      const { userId } = c.req.valid("param");
      const { cursor } = c.req.valid("query");
      const page = await sessionStore(c.env.SESSIONS, kvTimeoutMs).revokePage(userId, cursor, revokePageSize);
      return c.json(page.cursor ? { revoked: page.revoked, complete: false, cursor: page.cursor } : { revoked: page.revoked, complete: true });
    });
