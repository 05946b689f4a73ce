import { Hono } from "hono/tiny";
import { nanoid } from "nanoid";
import { SESSION_ID_LENGTH, SESSION_ID_PATTERN, SESSION_TTL, SessionInput, type SessionRecord, ttlFrom } from "../contract";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { isAdmin, requireAdmin } from "../middleware/admin";
import { jsonBody } from "../middleware/validate";
import { bearerToken, presentedSessionId } from "../middleware/validate-session";
import { empty, json } from "../respond";
import { sessionStore } from "../stores/sessions";
import type { Deps } from "../app";

const notFound = () => new ApiError(404, "not_found", "no such session");

export const sessionRoutes = ({ kvTimeoutMs, now }: Deps) =>
  new Hono<AppEnv>()
    // Service-to-service: the login service creates sessions with the admin token.
    .post("/sessions", requireAdmin(), jsonBody(SessionInput), async (c) => {
      const input = c.req.valid("json");
      const ttlSeconds = input.ttlSeconds ?? ttlFrom(c.env.SESSION_TTL_SECONDS, SESSION_TTL);
      const createdAt = now();
      const session: SessionRecord = {
        userId: input.userId,
        email: input.email,
        roles: input.roles ?? [],
        createdAt: new Date(createdAt).toISOString(),
        expiresAt: new Date(createdAt + ttlSeconds * 1000).toISOString(),
      };
      const sessionId = nanoid(SESSION_ID_LENGTH);
      await sessionStore(c.env.SESSIONS, kvTimeoutMs).put(sessionId, session, ttlSeconds);
      return json({ sessionId, expiresAt: session.expiresAt }, 201);
    })
    .get("/sessions/:id", async (c) => {
      const id = c.req.param("id");
      if (!SESSION_ID_PATTERN.test(id)) throw notFound();
      const session = await sessionStore(c.env.SESSIONS, kvTimeoutMs).findLive(id, now());
      if (!session) throw notFound();
      return json(session);
    })
    // A logout: the admin token, or the session itself (as bearer token or cookie), may end a session.
    // Deleting one that is already gone is a 204 too, so a retried logout is harmless.
    .delete("/sessions/:id", async (c) => {
      const id = c.req.param("id");
      if (presentedSessionId(c) !== id && !(await isAdmin(c.env.ADMIN_TOKEN, bearerToken(c)))) {
        throw new ApiError(401, "unauthorized", "present the admin token or the session itself to delete a session", {
          "WWW-Authenticate": 'Bearer realm="session"',
        });
      }
      if (!SESSION_ID_PATTERN.test(id)) throw notFound();
      await sessionStore(c.env.SESSIONS, kvTimeoutMs).delete(id);
      return empty(204);
    });
