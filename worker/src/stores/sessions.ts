import {
  KV_MIN_TTL_SECONDS,
  SESSION_MAX_LIFETIME,
  SESSION_ID_PREFIX_LENGTH,
  type SessionRecord,
  type LegacyUserSessionMetadata,
  type UserSessionMetadata,
  decodeSession,
  legacySessionKey,
  sessionHash,
  sessionKeyOfHash,
  decodeUserSessionMetadata,
  encodeSession,
  READ_CACHE_TTL,
  sessionKey,
  userSessionKey,
  userSessionPrefix,
  ttlFrom,
} from "../contract";
import type { Env } from "../env";
import { inBatches, kvCall, type KvGuard } from "./kv";

/**
 * A Worker invocation may make 1000 KV operations: one list plus up to three
 * deletes per session (index entry, session, and its pre-hash key for an entry
 * written before hashing). Back to 499 when legacySessionKey goes.
 */
export const REVOKE_PAGE_SIZE = 333;
/** One KV list returns at most 1000 keys. */
const LIST_PAGE_SIZE = 1000;
/** Deletes in flight at once, so that queued calls do not spend their deadline waiting. */
const DELETE_CONCURRENCY = 50;

/** The absolute session lifetime this deployment enforces, in seconds. */
export const maxLifetimeSeconds = (env: Pick<Env, "SESSION_MAX_LIFETIME_SECONDS">) =>
  ttlFrom(env.SESSION_MAX_LIFETIME_SECONDS, SESSION_MAX_LIFETIME);

/** When no refresh can keep the session alive any longer: createdAt + the absolute lifetime. */
export const lifetimeEnd = (session: Pick<SessionRecord, "createdAt">, maxLifetimeSeconds: number) =>
  Date.parse(session.createdAt) + maxLifetimeSeconds * 1000;

/** Neither past its expiresAt (KV expiry is lazy) nor past its absolute lifetime. */
export const isLive = (session: Pick<SessionRecord, "createdAt" | "expiresAt">, now: number, maxLifetimeSeconds: number) =>
  Date.parse(session.expiresAt) > now && lifetimeEnd(session, maxLifetimeSeconds) > now;

/** One session as a listing shows it: never the full id. */
export interface SessionSummary {
  sessionIdPrefix: string;
  createdAt: string;
  expiresAt: string;
  lastSeenAt?: string;
}

/**
 * Sessions in the SESSIONS namespace: `session:<sha256(id)>` holds the session
 * (contract's sessionKey; no KV key, value or metadata holds a session id), and
 * a per-user index entry (contract's userSessionKey) with the same expiry
 * carries in its metadata what listing and revoking need, so both cost lists,
 * not a read per session.
 *
 * Sessions stored before ids were hashed sit under `session:<id>`: a read that
 * misses the hashed key falls back to it, and this store (one per request)
 * remembers which ids it found there, so a refresh, `moveIfLegacy` or delete
 * moves or removes them.
 */
export function sessionStore(kv: KVNamespace, timeoutMs: number) {
  const guard: KvGuard = { binding: "SESSIONS", timeoutMs };
  const put = (key: string, value: string, session: SessionRecord, now: number, metadata?: UserSessionMetadata) =>
    kvCall(guard, "put", () => kv.put(key, value, { expirationTtl: kvTtl(session, now), ...(metadata ? { metadata } : {}) }));
  const remove = (key: string) => kvCall(guard, "delete", () => kv.delete(key));
  const get = (key: string) => kvCall(guard, "get", () => kv.get(key, { cacheTtl: READ_CACHE_TTL.session }));
  const putIndexEntry = async (id: string, session: SessionRecord, now: number) =>
    put(await userSessionKey(session.userId, id), "", session, now, await indexMetadata(id, session));
  /** Ids this request's reads found under their pre-hash key. */
  const legacy = new Set<string>();

  async function read(id: string): Promise<SessionRecord | undefined> {
    let raw = await get(await sessionKey(id));
    if (raw === null) {
      raw = await get(legacySessionKey(id));
      if (raw !== null) legacy.add(id);
    }
    if (raw === null) return undefined;
    const session = decodeSession(raw);
    if (!session) console.error("SESSIONS holds a value that is not a session; treating it as missing");
    return session;
  }

  /**
   * Writes a session and its index entry; false when a revocation removed the
   * session meanwhile. A refresh reads, then writes: if a revocation deleted
   * the session between the two, the write would bring it back. Revocations
   * delete the index entry before the session, so after writing the session
   * its index entry is read: gone means revoked, and the session is deleted
   * again. A session from before the index existed (`indexed` false) has no
   * entry to check: this write creates it. A session read from its pre-hash
   * key is moved: its old key is deleted once the new one is written.
   */
  async function slide(id: string, session: SessionRecord, now: number, indexed: boolean): Promise<boolean> {
    const key = await sessionKey(id);
    await put(key, encodeSession(session), session, now);
    if (indexed) {
      const indexKey = await userSessionKey(session.userId, id);
      if ((await kvCall(guard, "get", () => kv.get(indexKey))) === null) {
        await remove(key);
        if (legacy.has(id)) await remove(legacySessionKey(id));
        return false;
      }
    }
    await putIndexEntry(id, session, now);
    if (legacy.delete(id)) await remove(legacySessionKey(id));
    return true;
  }

  return {
    /** The stored session, live or not; undefined when unknown or unreadable. One KV read (two for an id stored before hashing, or unknown). */
    read,

    /** The session, or undefined when unknown, unreadable, expired or past its absolute lifetime. */
    async findLive(id: string, now: number, maxLifetimeSeconds: number): Promise<SessionRecord | undefined> {
      const session = await read(id);
      return session && isLive(session, now, maxLifetimeSeconds) ? session : undefined;
    },

    /**
     * Two writes: the session, then its index entry. In this order a session
     * that validates is always listed (or about to be), even when a revocation
     * runs at the same moment; if the index entry cannot be written the session
     * is removed again, so no session lives unlisted.
     */
    async create(id: string, session: SessionRecord, now: number): Promise<void> {
      const key = await sessionKey(id);
      await put(key, encodeSession(session), session, now);
      try {
        await putIndexEntry(id, session, now);
      } catch (error) {
        await remove(key).catch(() => {});
        throw error;
      }
    },

    slide,

    /**
     * A session this request read from its pre-hash key is written to its
     * hashed key as it is (a refresh that does not slide still moves it);
     * false when it was revoked meanwhile. No KV operation otherwise.
     */
    async moveIfLegacy(id: string, session: SessionRecord, now: number): Promise<boolean> {
      return legacy.has(id) ? slide(id, session, now, session.ttlSeconds !== undefined) : true;
    },

    /** Logout: the index entry (found through the session's user), then the session. */
    async delete(id: string): Promise<void> {
      const session = await read(id);
      if (session) await remove(await userSessionKey(session.userId, id));
      await remove(await sessionKey(id));
      if (legacy.has(id)) await remove(legacySessionKey(id));
    },

    /** One page of a user's live sessions, from index metadata alone: one KV list. */
    async listByUser(userId: string, cursor: string | undefined, now: number, maxLifetimeSeconds: number) {
      const page = await listIndex(userId, cursor, LIST_PAGE_SIZE);
      const sessions: SessionSummary[] = page.entries
        .filter(({ meta }) => meta && isLive(meta, now, maxLifetimeSeconds))
        .map(({ meta }) => summary(meta!));
      return { sessions, cursor: page.cursor };
    },

    /**
     * Deletes one page of a user's sessions: every index entry of the page
     * first, then the sessions (the order `slide` relies on). One list plus
     * at most 3 × REVOKE_PAGE_SIZE deletes (an entry from before hashing names
     * a session that may sit under either key: both are deleted).
     */
    async revokePage(userId: string, cursor: string | undefined, pageSize = REVOKE_PAGE_SIZE): Promise<{ revoked: number; cursor?: string }> {
      const page = await listIndex(userId, cursor, Math.min(pageSize, REVOKE_PAGE_SIZE));
      await inBatches(page.entries, DELETE_CONCURRENCY, ({ name }) => remove(name));
      const metas = page.entries.flatMap(({ meta }) => (meta ? [meta] : []));
      const keys = await Promise.all(
        metas.map(async (meta) =>
          "sessionHash" in meta ? [sessionKeyOfHash(meta.sessionHash)] : [await sessionKey(meta.sessionId), legacySessionKey(meta.sessionId)],
        ),
      );
      await inBatches(keys.flat(), DELETE_CONCURRENCY, remove);
      return page.cursor ? { revoked: metas.length, cursor: page.cursor } : { revoked: metas.length };
    },
  };

  async function listIndex(userId: string, cursor: string | undefined, limit: number) {
    const prefix = await userSessionPrefix(userId);
    const page = await kvCall(guard, "list", () => kv.list({ prefix, limit, ...(cursor ? { cursor } : {}) }));
    const entries = page.keys.map(({ name, metadata }) => {
      const meta = decodeUserSessionMetadata(metadata);
      if (!meta) console.error("SESSIONS holds a user-session entry without valid metadata; skipping it");
      return { name, meta };
    });
    return { entries, cursor: page.list_complete ? undefined : page.cursor };
  }
}

/** KV's expiry for a session's entries: until its expiresAt, never under KV's 60 s minimum (reads check expiresAt). */
const kvTtl = (session: SessionRecord, now: number) =>
  Math.max(KV_MIN_TTL_SECONDS, Math.ceil((Date.parse(session.expiresAt) - now) / 1000));

const indexMetadata = async (sessionId: string, { createdAt, expiresAt, lastSeenAt }: SessionRecord): Promise<UserSessionMetadata> => ({
  sessionHash: await sessionHash(sessionId),
  sessionIdPrefix: sessionId.slice(0, SESSION_ID_PREFIX_LENGTH),
  createdAt,
  expiresAt,
  ...(lastSeenAt === undefined ? {} : { lastSeenAt }),
});

const summary = (meta: UserSessionMetadata | LegacyUserSessionMetadata): SessionSummary => ({
  sessionIdPrefix: "sessionIdPrefix" in meta ? meta.sessionIdPrefix : meta.sessionId.slice(0, SESSION_ID_PREFIX_LENGTH),
  createdAt: meta.createdAt,
  expiresAt: meta.expiresAt,
  ...(meta.lastSeenAt === undefined ? {} : { lastSeenAt: meta.lastSeenAt }),
});
