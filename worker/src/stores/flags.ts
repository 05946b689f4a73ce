import {
  decodeEvaluator,
  decodeFlag,
  encodeEvaluator,
  encodeFlag,
  evaluatorFromMetadata,
  evaluatorKey,
  evaluatorNameFromKey,
  type FlagDefinition as Flag,
  FLAG_ISOLATE_TTL_SECONDS,
  flagFromMetadata,
  flagKey,
  flagNameFromKey,
  KEY_PREFIX,
  READ_CACHE_TTL,
} from "../contract";
import { setBounded } from "../bounded-map";
import { kvCall, type KvGuard } from "./kv";

/** Feature flags in the CONFIG namespace; each flag is also carried whole in its key's metadata when it fits. */
export function flagStore(kv: KVNamespace, timeoutMs: number) {
  const guard: KvGuard = { binding: "CONFIG", timeoutMs };
  async function get(name: string): Promise<Flag | undefined> {
    const raw = await kvCall(guard, "get", () => kv.get(flagKey(name), { cacheTtl: READ_CACHE_TTL.flag }));
    if (raw === null) return undefined;
    const flag = decodeFlag(raw);
    if (!flag) console.error(`CONFIG holds an invalid value for flag ${name}; treating it as missing`);
    return flag;
  }
  return {
    get,
    put: (name: string, flag: Flag) =>
      kvCall(guard, "put", () => {
        const { value, metadata } = encodeFlag(flag);
        return kv.put(flagKey(name), value, { metadata });
      }),
    delete: (name: string) => kvCall(guard, "delete", () => kv.delete(flagKey(name))),
    /** One list call per 1000 flags; only a flag too large for metadata costs an extra read. */
    async list(): Promise<{ name: string; flag: Flag }[]> {
      const flags: { name: string; flag: Flag }[] = [];
      let cursor: string | undefined;
      do {
        const page = await kvCall(guard, "list", () => kv.list({ prefix: KEY_PREFIX.flag, cursor }));
        for (const key of page.keys) {
          const name = flagNameFromKey(key.name);
          const flag = flagFromMetadata(key.metadata) ?? (await get(name));
          if (flag) flags.push({ name, flag });
        }
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return flags;
    },
    /** A shared rule (`$evaluators` entry); undefined when there is none. */
    async getEvaluator(name: string): Promise<Record<string, unknown> | undefined> {
      const raw = await kvCall(guard, "get", () => kv.get(evaluatorKey(name), { cacheTtl: READ_CACHE_TTL.flag }));
      if (raw === null) return undefined;
      const rule = decodeEvaluator(raw);
      if (!rule) console.error(`CONFIG holds an invalid value for evaluator ${name}; treating it as missing`);
      return rule;
    },
    putEvaluator: (name: string, rule: Record<string, unknown>) =>
      kvCall(guard, "put", () => {
        const { value, metadata } = encodeEvaluator(rule);
        return kv.put(evaluatorKey(name), value, { metadata });
      }),
    deleteEvaluator: (name: string) => kvCall(guard, "delete", () => kv.delete(evaluatorKey(name))),
    /** Every evaluator: one list call per 1000, an extra read only for a rule too large for metadata. */
    async listEvaluators(): Promise<Record<string, Record<string, unknown>>> {
      const evaluators: Record<string, Record<string, unknown>> = {};
      let cursor: string | undefined;
      do {
        const page = await kvCall(guard, "list", () => kv.list({ prefix: KEY_PREFIX.evaluator, cursor }));
        for (const key of page.keys) {
          const name = evaluatorNameFromKey(key.name);
          const rule = evaluatorFromMetadata(key.metadata) ?? (await this.getEvaluator(name));
          if (rule) evaluators[name] = rule;
        }
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return evaluators;
    },
  };
}

/** Every flag and evaluator, as bulk evaluation and export need them. */
export interface FlagSet {
  flags: { name: string; flag: Flag }[];
  evaluators: Record<string, Record<string, unknown>>;
}

/**
 * The whole flag set, trusted by this isolate for FLAG_ISOLATE_TTL_SECONDS,
 * so that web providers polling the bulk route cost KV lists at most once
 * per window per isolate instead of once per poll. A plain value, filled
 * check-then-set: a request that finds it stale reads KV itself and never
 * waits on another request's read (CONVENTIONS, "Each request is its own
 * world"). A write through this isolate drops it.
 */
export class FlagSetCache {
  #entry: { set: FlagSet; until: number } | undefined;
  constructor(private readonly now: () => number) {}

  get(): FlagSet | undefined {
    return this.#entry && this.#entry.until > this.now() ? this.#entry.set : undefined;
  }

  /** Counts writes through this isolate; a read started before the latest one may predate it. */
  #generation = 0;
  get generation(): number {
    return this.#generation;
  }

  /** Keeps `set`, read when `generation` was current, unless a write has dropped the cache since. */
  set(set: FlagSet, generation: number): void {
    if (generation !== this.#generation) return;
    this.#entry = { set, until: this.now() + FLAG_ISOLATE_TTL_SECONDS * 1000 };
  }

  drop(): void {
    this.#entry = undefined;
    this.#generation += 1;
  }
}

/** Bound on cached flag names, so requests for many unknown names cannot grow the isolate's memory. */
const FLAG_CACHE_MAX_ENTRIES = 1000;

/**
 * Flags this isolate has read, trusted for FLAG_ISOLATE_TTL_SECONDS. Missing
 * flags are cached too (as undefined), so evaluating an unknown flag is not a
 * KV read per request either.
 */
export class FlagCache {
  readonly #entries = new Map<string, { flag: Flag | undefined; until: number }>();
  constructor(private readonly now: () => number) {}

  /**
   * The flag, from this isolate's cache or else from `load` (one KV read,
   * with `cacheTtl`), which this request makes itself: concurrent cold reads
   * each read, never awaiting another request's read (a promise must not
   * cross requests; CONVENTIONS.md). A failed read is not cached.
   */
  async read(name: string, load: () => Promise<Flag | undefined>): Promise<Flag | undefined> {
    const cached = this.get(name);
    if (cached.hit) return cached.flag;
    const flag = await load();
    // Check-then-set: a write through this isolate while the read was in flight is newer than what was read.
    if (!this.get(name).hit) this.set(name, flag);
    return flag;
  }

  /** `hit: false` when the flag must be read from KV. */
  get(name: string): { hit: true; flag: Flag | undefined } | { hit: false } {
    const entry = this.#entries.get(name);
    if (!entry || entry.until <= this.now()) return { hit: false };
    return { hit: true, flag: entry.flag };
  }

  set(name: string, flag: Flag | undefined): void {
    setBounded(this.#entries, name, { flag, until: this.now() + FLAG_ISOLATE_TTL_SECONDS * 1000 }, FLAG_CACHE_MAX_ENTRIES);
  }
}
