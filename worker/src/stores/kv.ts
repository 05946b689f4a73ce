import type { KvBinding } from "../contract";
import { unavailable } from "../errors";

/** KV allows one write per second to the same key; a 429 is retried after these pauses, then reported. */
const RATE_LIMIT_BACKOFF_MS = [250, 1000];

export interface KvGuard {
  binding: KvBinding;
  timeoutMs: number;
}

/**
 * Runs one KV operation under a deadline. A throw, a rejection or a timeout
 * becomes a 503 with Retry-After (logged with binding and operation, never the
 * key, which may be a session id): a KV fault is never a 500.
 */
export async function kvCall<T>(guard: KvGuard, op: string, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await withTimeout(call, guard.timeoutMs);
    } catch (err) {
      const pause = isRateLimited(err) ? RATE_LIMIT_BACKOFF_MS[attempt] : undefined;
      if (pause !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, pause));
        continue;
      }
      console.error(`KV ${guard.binding}.${op} failed after ${attempt + 1} attempt(s): ${describe(err)}`);
      throw unavailable(`storage is unavailable (${guard.binding}.${op}); retry shortly`);
    }
  }
}

async function withTimeout<T>(call: () => Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const isRateLimited = (err: unknown) => /\b429\b|too many requests/i.test(describe(err));
const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Runs `each` over `items`, `size` at a time, so a page of KV calls does not queue past its deadline. */
export async function inBatches<T>(items: readonly T[], size: number, each: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(each));
}
