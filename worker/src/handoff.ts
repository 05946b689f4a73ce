import { setBounded } from "./bounded-map";

/**
 * Lets the requests of one isolate that want the same slow work (an origin
 * fetch, a session write) do it once, without sharing a promise. workerd
 * cancels a request's continuations when the request that created a promise
 * has ended, and a request awaiting it is answered 500 ("cross-request
 * promise cancellation" in Cloudflare's docs), so a request only ever awaits
 * its own promises here:
 *
 * - the first request claims the key (check-then-set, synchronous), does the
 *   work in its own request and publishes the outcome as a plain value;
 * - the others poll with their own timers until the outcome is published, or
 *   until the claim is released (the work failed) or lapses (the claiming
 *   request was cancelled), and then claim it themselves.
 *
 * Only plain values (numbers, strings, plain objects) are kept.
 */
export class Handoff<T> {
  /** Key → when its claim lapses. */
  readonly #claims = new Map<string, number>();
  readonly #outcomes = new Map<string, { value: T; until: number }>();

  constructor(
    private readonly now: () => number,
    private readonly options: {
      /** How long a claim holds before another request may take over: the work's own deadline. */
      claimMs: number;
      /** How long a published outcome stays for the requests that were waiting for it (they poll every `pollMs`). */
      keepMs: number;
      /** Bound on remembered keys, so many distinct keys cannot grow the isolate's memory. */
      maxEntries: number;
      pollMs?: number;
    },
  ) {}

  /**
   * The outcome of `work` for `key`: this request's own run of it when no
   * other request of the isolate is on it, else the outcome the request that
   * is on it publishes. A failed run releases the claim and throws to its own
   * caller only; a waiting request then runs `work` itself. After three
   * hand-overs that came to nothing the caller runs `work` without
   * coordination rather than wait longer.
   *
   * `keepAlive` receives this request's run when it leads (failures already
   * handled), to outlive its client (`ctx.waitUntil`): the others wait for it.
   */
  async run(key: string, work: () => Promise<T>, keepAlive?: (running: Promise<unknown>) => void): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.#claim(key)) return this.#lead(key, work, keepAlive);
      const handed = await this.#wait(key);
      if (handed) return handed.value;
    }
    return work();
  }

  /** True while another request holds a live claim on `key` (for callers with something to answer meanwhile). */
  busy(key: string): boolean {
    const lapse = this.#claims.get(key);
    return lapse !== undefined && lapse > this.now();
  }

  #claim(key: string): boolean {
    if (this.busy(key)) return false;
    this.#outcomes.delete(key);
    setBounded(this.#claims, key, this.now() + this.options.claimMs, this.options.maxEntries);
    return true;
  }

  async #lead(key: string, work: () => Promise<T>, keepAlive?: (running: Promise<unknown>) => void): Promise<T> {
    let value: T;
    try {
      const running = work();
      keepAlive?.(running.catch(() => {}));
      value = await running;
    } catch (error) {
      this.#claims.delete(key);
      throw error;
    }
    this.#claims.delete(key);
    setBounded(this.#outcomes, key, { value, until: this.now() + this.options.keepMs }, this.options.maxEntries);
    return value;
  }

  #outcome(key: string): { value: T } | undefined {
    const entry = this.#outcomes.get(key);
    if (!entry) return undefined;
    if (entry.until > this.now()) return { value: entry.value };
    this.#outcomes.delete(key);
    return undefined;
  }

  /**
   * Polls, on this request's own timers, for the outcome of another request's
   * claim; undefined once there is neither a live claim nor an outcome, or
   * after `claimMs` of polling even if the clock does not move.
   */
  async #wait(key: string): Promise<{ value: T } | undefined> {
    const pollMs = this.options.pollMs ?? 10;
    for (let waited = 0; ; waited += pollMs) {
      const outcome = this.#outcome(key);
      if (outcome) return outcome;
      if (!this.busy(key) || waited >= this.options.claimMs) return undefined;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}
