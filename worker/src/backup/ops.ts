/**
 * Counting what one invocation spends. A Worker invocation may make 1000
 * operations to external services, KV and R2 together, a bulk KV read counting
 * once (developers.cloudflare.com/kv/platform/limits); local workerd does not
 * enforce it, so the backup engine counts every call itself and stops short.
 */

/** The hard limit per invocation. */
export const INVOCATION_OPS_LIMIT = 1000;
/** What a backup or restore slice allows itself by default: headroom below the limit for the route or handler around it. */
export const DEFAULT_OPS_BUDGET = 900;
/** One KV or R2 operation's deadline unless the caller gives its own (the routes give kvTimeoutMs). */
export const DEFAULT_OP_TIMEOUT_MS = 10_000;
/** Keys per KV list page (KV's maximum), and so per backup part. */
export const DEFAULT_PAGE_SIZE = 1000;
/** KV's bulk get takes at most this many keys. */
export const BULK_GET_MAX = 100;

/** What a page makes: a list, the bulk reads, the part and the state (the last page also a manifest). */
export const pageOps = (pageSize: number) => 1 + Math.ceil(pageSize / BULK_GET_MAX) + 2;
/** What a slice keeps free before starting a page: the page, a manifest, 2 spare for a part left behind, and the run record and the state's removal. */
export const pageReserve = (pageSize: number) => pageOps(pageSize) + 1 + 2 + 2;
/** Pages one slice of `budget` makes (after reading and leasing the state; a run's first slice also creates it). */
export function pagesPerSlice(budget: number, pageSize: number, first = false): number {
  let used = first ? 4 : 2;
  let pages = 0;
  while (budget - used >= pageReserve(pageSize)) {
    used += pageOps(pageSize);
    pages += 1;
  }
  return pages;
}

/** A failure the routes turn into the `{error, code}` envelope; the scheduled handler logs it. */
export class BackupError extends Error {
  override name = "BackupError";
  constructor(
    readonly status: 400 | 404 | 409 | 502 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class OpsBudget {
  used = 0;
  constructor(
    readonly limit: number,
    /** Deadline of one operation: a store that hangs fails the slice (503) instead of holding it. */
    readonly timeoutMs = DEFAULT_OP_TIMEOUT_MS,
  ) {
    if (limit > INVOCATION_OPS_LIMIT) throw new Error(`an ops budget above ${INVOCATION_OPS_LIMIT} would break KV's per-invocation limit`);
  }
  get remaining() {
    return this.limit - this.used;
  }
  /**
   * Counts one operation and runs it; a failure of the store is a 503 naming
   * the store and the operation (never the key: it may be a session's).
   */
  async call<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.used >= this.limit) throw new Error(`ops budget of ${this.limit} exhausted before ${what} (a bug: slices check before each page)`);
    this.used += 1;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([op(), deadline]);
    } catch (error) {
      console.error(`backup: ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
      throw new BackupError(503, "unavailable", `storage is unavailable (${what}); retry shortly`);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
