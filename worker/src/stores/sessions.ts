import { decodeSession, encodeSession, READ_CACHE_TTL, type SessionRecord, sessionKey } from "../contract";
import { kvCall, type KvGuard } from "./kv";

/** Sessions in the SESSIONS namespace, one key per session. */
export function sessionStore(kv: KVNamespace, timeoutMs: number) {
  const guard: KvGuard = { binding: "SESSIONS", timeoutMs };
  return {
    /** The session, or undefined when unknown, unreadable or past its expiresAt (KV expiry is lazy). */
    async findLive(id: string, now: number): Promise<SessionRecord | undefined> {
      const raw = await kvCall(guard, "get", () => kv.get(sessionKey(id), { cacheTtl: READ_CACHE_TTL.session }));
      if (raw === null) return undefined;
      const session = decodeSession(raw);
      if (!session) {
        console.error("SESSIONS holds a value that is not a session; treating it as missing");
        return undefined;
      }
      return Date.parse(session.expiresAt) > now ? session : undefined;
    },
    put: (id: string, session: SessionRecord, ttlSeconds: number) =>
      kvCall(guard, "put", () => kv.put(sessionKey(id), encodeSession(session), { expirationTtl: ttlSeconds })),
    delete: (id: string) => kvCall(guard, "delete", () => kv.delete(sessionKey(id))),
  };
}
