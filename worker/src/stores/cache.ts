import { CACHE_STALE_SECONDS, type CacheMetadata, decodeCacheMetadata, productKey } from "../contract";
import { kvCall, type KvGuard } from "./kv";

export interface CachedProduct extends CacheMetadata {
  /** The origin's JSON body, as text. */
  body: string;
}

/** A Worker invocation may make 1000 KV operations: one list plus at most this many deletes. */
export const PURGE_PAGE_SIZE = 999;
/** Deletes in flight at once, so that queued calls do not spend their deadline waiting. */
const DELETE_CONCURRENCY = 50;

/** Cached origin responses in the CACHE namespace. */
export function cacheStore(kv: KVNamespace, timeoutMs: number) {
  const guard: KvGuard = { binding: "CACHE", timeoutMs };
  return {
    /**
     * One KV read: the body and its freshness travel together. `cacheTtl` is
     * the freshness window (CACHE_TTL_SECONDS): freshness is decided from the
     * metadata read with the body, so an edge-cached copy is never served as
     * fresher than it is; what a longer edge cache delays is an invalidation
     * or purge reaching other locations (docs/api.md, "Read caching").
     */
    async get(id: string, cacheTtl: number): Promise<CachedProduct | undefined> {
      const { value, metadata } = await kvCall(guard, "getWithMetadata", () => kv.getWithMetadata(productKey(id), { type: "text", cacheTtl }));
      if (value === null) return undefined;
      const meta = decodeCacheMetadata(metadata);
      if (!meta) console.error("CACHE holds an entry without valid metadata; treating it as missing");
      return meta && { body: value, ...meta };
    },
    /** Kept for CACHE_STALE_SECONDS past freshness, so an origin failure can be answered from it. */
    put: (id: string, entry: CachedProduct) =>
      kvCall(guard, "put", () => {
        const metadata: CacheMetadata = { fetchedAt: entry.fetchedAt, ttlSeconds: entry.ttlSeconds };
        return kv.put(productKey(id), entry.body, { expirationTtl: entry.ttlSeconds + CACHE_STALE_SECONDS, metadata });
      }),
    delete: (id: string) => kvCall(guard, "delete", () => kv.delete(productKey(id))),
    /** Deletes one page of keys under `prefix`; `cursor` is set while more keys may match. */
    async purgePage(prefix: string, cursor?: string): Promise<{ deleted: number; cursor?: string }> {
      const page = await kvCall(guard, "list", () => kv.list({ prefix, cursor, limit: PURGE_PAGE_SIZE }));
      const names = page.keys.map((key) => key.name);
      for (let i = 0; i < names.length; i += DELETE_CONCURRENCY) {
        await Promise.all(names.slice(i, i + DELETE_CONCURRENCY).map((name) => kvCall(guard, "delete", () => kv.delete(name))));
      }
      return page.list_complete ? { deleted: names.length } : { deleted: names.length, cursor: page.cursor };
    },
  };
}
