import type { Context } from "hono";
import { Hono } from "hono/tiny";
import { nanoid } from "nanoid";
import {
  SESSION_ID_LENGTH,
  SESSION_ID_PATTERN,
  SESSION_REFRESH_INTERVAL_MAX_SECONDS,
  SESSION_TTL,
  SessionInput,
  type SessionRecord,
  sessionHash,
  sessionView,
  ttlFrom,
} from "../contract";
import type { AppEnv, Env } from "../env";
import { ApiError } from "../errors";
import { requireScope, requireSelfOrScope } from "../middleware/admin";
import { rateLimit } from "../middleware/rate-limit";
import { jsonBody } from "../middleware/validate";
import { empty, json } from "../respond";
import { lifetimeEnd, maxLifetimeSeconds, sessionStore } from "../stores/sessions";
import { Handoff } from "../handoff";
import { keepAlive } from "../keep-alive";
import type { Deps } from "../app";

/** A session's refreshes are counted under its hash: the id itself is a credential. */
const perSession = (c: Context<AppEnv>) => sessionHash(c.req.param("id") ?? "");
/** How long a refresh's outcome stays for the refreshes of the same session that were waiting for it. */
const REFRESH_KEEP_MS = 1000;
/** Bound on sessions remembered by the refresh hand-off. */
const MAX_REFRESHES_REMEMBERED = 1000;

const notFound = () => new ApiError(404, "not_found", "no such session");

export function sessionRoutes({ kvTimeoutMs, now }: Deps) {
  /**
   * A burst of refreshes of one session in this isolate makes one read and at
   * most one write: the others take its outcome as a plain value, never its
   * promise (handoff.ts). A refresh that fails (404, 401, 503) publishes
   * nothing; each waiting request then refreshes, and fails, itself.
   */
  const refreshes = new Handoff<{ sessionId: string; expiresAt: string }>(now, {
    claimMs: 3 * kvTimeoutMs,
    keepMs: REFRESH_KEEP_MS,
    maxEntries: MAX_REFRESHES_REMEMBERED,
  });

  /**
   * Slides the expiry to now + the session's TTL, never past its absolute
   * lifetime. Within the refresh interval of its last write (or when the
   * expiry would not move) it answers without writing.
   */
  async function refresh(env: Env, id: string) {
    const store = sessionStore(env.SESSIONS, kvTimeoutMs);
    const at = now();
    const session = await store.read(id);
    if (!session) throw notFound();
    const cap = lifetimeEnd(session, maxLifetimeSeconds(env));
    if (at >= cap) {
      throw new ApiError(401, "session_lifetime_exceeded", "the session has reached its absolute lifetime; sign in again", {
        "WWW-Authenticate": 'Bearer realm="session"',
      });
    }
    const expiresAt = Date.parse(session.expiresAt);
    if (at >= expiresAt) throw notFound();
    // Sessions written before refresh existed carry no TTL: theirs is what they were created with.
    const ttlSeconds = session.ttlSeconds ?? Math.round((expiresAt - Date.parse(session.createdAt)) / 1000);
    const lastWrite = Date.parse(session.lastSeenAt ?? session.createdAt);
    const interval = Math.min(SESSION_REFRESH_INTERVAL_MAX_SECONDS, ttlSeconds / 10) * 1000;
    const target = Math.min(at + ttlSeconds * 1000, cap);
    if (at - lastWrite < interval || target <= expiresAt) {
      if (!(await store.moveIfLegacy(id, session, at))) throw notFound();
      return { sessionId: id, expiresAt: session.expiresAt };
    }

    const slid: SessionRecord = { ...session, ttlSeconds, expiresAt: new Date(target).toISOString(), lastSeenAt: new Date(at).toISOString() };
    if (!(await store.slide(id, slid, at, session.ttlSeconds !== undefined))) throw notFound();
    return { sessionId: id, expiresAt: slid.expiresAt };
  }

  return (
    new Hono<AppEnv>()
      // Service-to-service: the login service creates sessions with the admin token.
      .post("/sessions", requireScope("sessions:write"), jsonBody(SessionInput), async (c) => {
        const input = c.req.valid("json");
        const ttlSeconds = input.ttlSeconds ?? ttlFrom(c.env.SESSION_TTL_SECONDS, SESSION_TTL);
        const createdAt = now();
        const session: SessionRecord = {
          userId: input.userId,
          email: input.email,
          roles: input.roles ?? [],
          createdAt: new Date(createdAt).toISOString(),
          expiresAt: new Date(Math.min(createdAt + ttlSeconds * 1000, createdAt + maxLifetimeSeconds(c.env) * 1000)).toISOString(),
          ttlSeconds,
        };
        const sessionId = nanoid(SESSION_ID_LENGTH);
        await sessionStore(c.env.SESSIONS, kvTimeoutMs).create(sessionId, session, createdAt);
        return json({ sessionId, expiresAt: session.expiresAt }, 201);
      })
      .get("/sessions/:id", async (c) => {
        const id = c.req.param("id");
        if (!SESSION_ID_PATTERN.test(id)) throw notFound();
        const session = await sessionStore(c.env.SESSIONS, kvTimeoutMs).findLive(id, now(), maxLifetimeSeconds(c.env));
        if (!session) throw notFound();
        return json(sessionView(session));
      })
      // A logout. Deleting one that is already gone is a 204 too, so a retried logout is harmless.
      .delete("/sessions/:id", requireSelfOrScope("sessions:revoke", "delete"), async (c) => {
        const id = c.req.param("id");
        if (!SESSION_ID_PATTERN.test(id)) throw notFound();
        await sessionStore(c.env.SESSIONS, kvTimeoutMs).delete(id);
        return empty(204);
      })
      .post("/sessions/:id/refresh", requireSelfOrScope("sessions:write", "refresh"), rateLimit("refreshesPerClient"), rateLimit("refreshesPerSession", perSession), async (c) => {
        const id = c.req.param("id");
        if (!SESSION_ID_PATTERN.test(id)) throw notFound();
        // A refresh this request leads completes (and publishes) even if its client leaves.
        const refreshed = await refreshes.run(id, () => refresh(c.env, id), (running) => keepAlive(c, running));
        return json(refreshed);
      })
  );
}
