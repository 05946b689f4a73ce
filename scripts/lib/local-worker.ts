/**
 * One Worker as Miniflare 5 runs it (`workers: [{ config, dev }]`): the same
 * Miniflare, and so the same workerd, that wrangler and the vitest plugin run
 * (package.json pins them together). `npm start`, the bench and the soak all
 * describe their Workers through this, so the local runtime is configured in
 * one place.
 */
import { readFileSync } from "node:fs";
import type { MiniflareOptions } from "miniflare";
import { COMPATIBILITY_DATE, COMPATIBILITY_FLAGS, type RateLimitBinding } from "../../worker/src/contract";

export type LocalWorkerOptions = NonNullable<MiniflareOptions["workers"]>[number];
type Binding = NonNullable<LocalWorkerOptions["config"]["env"]>[string];

export interface LocalWorker {
  name: string;
  /** An ES module bundle on disk (dist/worker.js) … */
  scriptPath?: string;
  /** … or its source (the bench's reference Workers). */
  script?: string;
  compatibilityDate?: string;
  compatibilityFlags?: readonly string[];
  /** Binding name → namespace id; Workers given the same id share the data. */
  kv?: Readonly<Record<string, string>>;
  /** Binding name → R2 bucket name (the backups bucket). */
  r2?: Readonly<Record<string, string>>;
  /** Plain-text bindings: vars, and secrets (locally a secret is a text binding, as in wrangler's .dev.vars). */
  text?: Readonly<Record<string, string>>;
  /** JSON bindings (the version-metadata stand-in). */
  json?: Readonly<Record<string, unknown>>;
  /** Workers Rate Limiting bindings: `limit` requests per `period` seconds per key. */
  rateLimits?: readonly RateLimitBinding[];
  /** Serve this Worker on its own loopback port too (mf.unsafeGetDirectURL(name)). */
  directSocket?: boolean;
}

export function localWorker(worker: LocalWorker): LocalWorkerOptions {
  const source = worker.script ?? (worker.scriptPath && readFileSync(worker.scriptPath, "utf8"));
  if (source === undefined) throw new Error(`local worker ${worker.name}: give scriptPath or script`);
  const env: Record<string, Binding> = {};
  for (const [name, id] of Object.entries(worker.kv ?? {})) env[name] = { type: "kv", id };
  for (const [name, bucket] of Object.entries(worker.r2 ?? {})) env[name] = { type: "r2", name: bucket };
  for (const [name, value] of Object.entries(worker.text ?? {})) env[name] = { type: "text", value };
  for (const [name, value] of Object.entries(worker.json ?? {})) env[name] = { type: "json", value: value as never };
  for (const { name, namespaceId, limit, period } of worker.rateLimits ?? []) env[name] = { type: "rate-limit", namespace: namespaceId, simple: { limit, period } };
  return {
    config: {
      name: worker.name,
      compatibilityDate: worker.compatibilityDate ?? COMPATIBILITY_DATE,
      compatibilityFlags: [...(worker.compatibilityFlags ?? COMPATIBILITY_FLAGS)],
      manifest: { mainModule: "worker.js", modules: { "worker.js": { type: "esm", contents: source } } },
      env,
    },
    dev: worker.directSocket ? { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] } : {},
  };
}
