/**
 * An in-memory KVNamespace with the semantics the session store relies on:
 * get/put/delete, list by prefix in key order with `limit` and a cursor (the
 * last key name, base64, as Miniflare's), metadata and expiry.
 *
 * Only for scale: local KV costs several milliseconds per operation, so 2,500
 * sessions (5,000 writes, 5,000 deletes) would take a minute; the same
 * scenario on real local KV runs with smaller pages (see user-sessions.test.ts).
 */
export function memoryKv(): KVNamespace & { size: () => number } {
  const entries = new Map<string, { value: string; metadata?: unknown; expiration?: number }>();
  const live = (name: string) => {
    const entry = entries.get(name);
    if (entry?.expiration !== undefined && entry.expiration * 1000 <= Date.now()) entries.delete(name);
    return entries.get(name);
  };
  const kv = {
    size: () => entries.size,
    async get(name: string) {
      return live(name)?.value ?? null;
    },
    async put(name: string, value: string, options: KVNamespacePutOptions = {}) {
      const expiration = options.expirationTtl !== undefined ? Math.floor(Date.now() / 1000) + options.expirationTtl : options.expiration;
      entries.set(name, { value, ...(options.metadata === undefined ? {} : { metadata: options.metadata }), ...(expiration === undefined ? {} : { expiration }) });
    },
    async delete(name: string) {
      entries.delete(name);
    },
    async list({ prefix, limit = 1000, cursor }: KVNamespaceListOptions = {}) {
      const after = typeof cursor === "string" ? atob(cursor) : "";
      const names = [...entries.keys()].filter((name) => name.startsWith(prefix ?? "") && name > after && live(name)).sort();
      const page = names.slice(0, limit);
      const keys = page.map((name) => {
        const { metadata, expiration } = entries.get(name)!;
        return { name, ...(metadata === undefined ? {} : { metadata }), ...(expiration === undefined ? {} : { expiration }) };
      });
      return names.length > limit ? { keys, list_complete: false, cursor: btoa(page.at(-1)!), cacheStatus: null } : { keys, list_complete: true, cacheStatus: null };
    },
  };
  return kv as unknown as KVNamespace & { size: () => number };
}
