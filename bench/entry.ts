/**
 * Bench-only Worker entry: the production app with every KV binding wrapped
 * in a counter, so `npm run bench` can report KV operations per request by
 * kind. Never deployed; the production bundle (worker/src/index.ts) stays
 * unwrapped.
 *
 *   GET    /__bench/kv-ops            → { requests, ops: { read, write, delete, list }, byBinding }
 *   DELETE /__bench/kv-ops            → resets the counters
 *   POST   /__bench/seed?binding=&prefix=&from=&count=  → writes `count` keys (not counted)
 */
import { createApp } from "../worker/src/app";
import { KV_BINDINGS, type KvBinding } from "../worker/src/contract";
import type { Env } from "../worker/src/env";

/** How KV bills: reads, writes, deletes and lists are priced per operation. */
export type OpKind = "read" | "write" | "delete" | "list";
const KIND_OF: Record<string, OpKind> = { get: "read", getWithMetadata: "read", put: "write", delete: "delete", list: "list" };

const zero = (): Record<OpKind, number> => ({ read: 0, write: 0, delete: 0, list: 0 });
let requests = 0;
let byBinding = Object.fromEntries(KV_BINDINGS.map((b) => [b, zero()])) as Record<KvBinding, Record<OpKind, number>>;

function counting(namespace: KVNamespace, binding: KvBinding): KVNamespace {
  return new Proxy(namespace, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      const kind = typeof property === "string" ? KIND_OF[property] : undefined;
      if (typeof value !== "function") return value;
      if (!kind) return value.bind(target);
      return (...args: unknown[]) => {
        // A bulk get (array of keys) is billed per key.
        byBinding[binding][kind] += kind === "read" && Array.isArray(args[0]) ? args[0].length : 1;
        return value.apply(target, args);
      };
    },
  });
}

const app = createApp();

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/kv-ops") {
      if (request.method === "DELETE") {
        requests = 0;
        byBinding = Object.fromEntries(KV_BINDINGS.map((b) => [b, zero()])) as typeof byBinding;
        return new Response(null, { status: 204 });
      }
      const ops = zero();
      for (const counts of Object.values(byBinding)) for (const kind of Object.keys(ops) as OpKind[]) ops[kind] += counts[kind];
      return Response.json({ requests, ops, byBinding });
    }
    if (url.pathname === "/__bench/seed" && request.method === "POST") return seed(url, env);
    requests += 1;
    const wrapped: Env = { ...env };
    for (const binding of KV_BINDINGS) wrapped[binding] = counting(env[binding], binding);
    return app.fetch(request, wrapped, ctx);
  },
} satisfies ExportedHandler<Env>;

/** Seeding from inside workerd is ~10x faster than through Miniflare's proxy. */
async function seed(url: URL, env: Env): Promise<Response> {
  const binding = url.searchParams.get("binding") as KvBinding;
  const prefix = url.searchParams.get("prefix") ?? "";
  const from = Number(url.searchParams.get("from") ?? 0);
  const count = Number(url.searchParams.get("count") ?? 0);
  if (!KV_BINDINGS.includes(binding) || !prefix || !(count > 0)) return new Response("bad seed request", { status: 400 });
  const keys = Array.from({ length: count }, (_, i) => `${prefix}${from + i}`);
  await Promise.all(keys.map((key) => env[binding].put(key, "{}", { metadata: { seeded: true } })));
  return Response.json({ written: count });
}
