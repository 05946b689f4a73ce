import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { type BackupDeps, continueBackup, LEASE_MS, startBackup } from "../src/backup/backup";
import { CONTINUE_CRON, decodePart, manifestPath, type NamespaceManifest, partPath, runPath, sha256Hex, statePath } from "../src/backup/format";
import { INVOCATION_OPS_LIMIT } from "../src/backup/ops";
import { type RestoreCursor, type RestoreSlice, restoreSlice } from "../src/backup/restore";
import { backupDeps } from "../src/backup/schedule";
import worker from "../src/index";
import { encodeFlag, flagKey, KV_BINDINGS, type KvBinding } from "../src/contract";

/** A hashed session key, as issue 20 writes them: session:<sha256 hex>. */
const hashedSessionKey = (i: number) => `session:${i.toString(16).padStart(64, "0")}`;
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

interface Entry {
  value: string | null;
  metadata: unknown;
  expiration: number | undefined;
}

/** Every key of a namespace with its value, metadata and expiration, as KV reports them. */
async function snapshot(kv: KVNamespace): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  let cursor: string | undefined;
  do {
    const page = await kv.list(cursor ? { cursor } : {});
    for (const key of page.keys) entries.set(key.name, { value: await kv.get(key.name), metadata: key.metadata ?? null, expiration: key.expiration });
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return entries;
}

/** Key by key: the same keys, values and metadata, expirations within a second. */
function expectSameData(actual: Map<string, Entry>, expected: Map<string, Entry>) {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = actual.get(key)!;
    expect(got.value, key).toBe(want.value);
    expect(got.metadata, key).toEqual(want.metadata);
    if (want.expiration === undefined) expect(got.expiration, key).toBeUndefined();
    else expect(Math.abs(got.expiration! - want.expiration), key).toBeLessThanOrEqual(1);
  }
}

async function clear(kv: KVNamespace) {
  for (;;) {
    const { keys } = await kv.list();
    if (keys.length === 0) return;
    await Promise.all(keys.map((key) => kv.delete(key.name)));
  }
}

async function putMany(kv: KVNamespace, count: number, key: (i: number) => string, options: KVNamespacePutOptions = {}) {
  for (let i = 0; i < count; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => kv.put(key(i + j), JSON.stringify({ n: i + j }), options)));
  }
}

/** The bindings with every KV and R2 call counted, per invocation (the harness's own count, not the engine's). */
function counted(stack: string, options: Partial<BackupDeps> = {}, config: KVNamespace = env.CONFIG) {
  let calls = 0;
  const count = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls += 1;
          return (value as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  const deps: BackupDeps = {
    ...backupDeps(env),
    kv: Object.fromEntries(KV_BINDINGS.map((b) => [b, count(b === "CONFIG" ? config : env[b])])) as Record<KvBinding, KVNamespace>,
    bucket: count(env.BACKUPS!),
    stack,
    ...options,
  };
  return { deps, take: () => ((calls = 0), calls), calls: () => calls };
}

/** Runs slices until the run completes; the KV/R2 calls each one made. */
async function backupToEnd(deps: BackupDeps, calls: () => number, reset: () => void, namespaces: KvBinding[]) {
  const perInvocation: number[] = [];
  reset();
  let result = await startBackup(deps, namespaces, "admin");
  perInvocation.push(calls());
  while (result.status === "running") {
    reset();
    result = await continueBackup(deps);
    perInvocation.push(calls());
  }
  if (result.status !== "complete") throw new Error(`backup ended ${result.status}`);
  return { run: result.run, perInvocation };
}

/** Restores a namespace slice by slice, summing the counts. */
async function restoreAll(deps: BackupDeps, backupId: string, namespace: KvBinding, apply: boolean, opsBudget?: number) {
  const totals: RestoreSlice["counts"] = { added: 0, changed: 0, deleted: 0, unchanged: 0, managed: 0, expired: 0 };
  let cursor: RestoreCursor | undefined;
  let slices = 0;
  let sample: RestoreSlice["sample"] | undefined;
  for (;;) {
    const slice = await restoreSlice(
      { kv: deps.kv[namespace], bucket: deps.bucket, stack: deps.stack, managedFlags: env.MANAGED_FLAGS?.split(",") ?? [], ...(opsBudget ? { opsBudget } : {}) },
      { backupId, namespace, apply, cursor },
    );
    slices += 1;
    sample ??= slice.sample;
    for (const [outcome, n] of Object.entries(slice.counts)) totals[outcome as keyof typeof totals] += n;
    if (slice.complete) return { totals, slices, sample };
    cursor = slice.cursor;
  }
}

describe("KV backups to R2", () => {
  beforeEach(async () => {
    await Promise.all(KV_BINDINGS.map((b) => clear(env[b])));
  });

  it("backs up CONFIG and SESSIONS; after damage a dry run changes nothing and an apply brings every key back", async () => {
    const { deps, calls, take } = counted("rehearsal", { pageSize: 40 });
    const flags = Array.from({ length: 150 }, (_, i) => `flag-${i}`);
    for (const name of flags) {
      const { value, metadata } = encodeFlag({ enabled: name.endsWith("0"), percentage: 50 });
      await env.CONFIG.put(flagKey(name), value, { metadata });
    }
    await env.CONFIG.put("note:plain", "text without metadata");
    await putMany(env.SESSIONS, 120, hashedSessionKey, { expiration: inAnHour(), metadata: { v: 1 } });
    await env.CACHE.put("product:1", "{}");
    const before = { CONFIG: await snapshot(env.CONFIG), SESSIONS: await snapshot(env.SESSIONS) };

    const { run } = await backupToEnd(deps, calls, take, ["CONFIG", "SESSIONS"]);
    expect(run.namespaces.map(({ namespace, status, keys }) => ({ namespace, status, keys }))).toEqual([
      { namespace: "CONFIG", status: "complete", keys: 151 },
      { namespace: "SESSIONS", status: "complete", keys: 120 },
    ]);
    // The manifest's sha256 is each part's.
    const manifest = await (await env.BACKUPS!.get(manifestPath("rehearsal", "CONFIG", run.backupId)))!.json<NamespaceManifest>();
    expect(manifest.parts).toHaveLength(4);
    for (const part of manifest.parts) {
      const bytes = new Uint8Array(await (await env.BACKUPS!.get(partPath("rehearsal", "CONFIG", run.backupId, part.name)))!.arrayBuffer());
      expect(await sha256Hex(bytes)).toBe(part.sha256);
      expect(decodePart(new TextDecoder().decode(bytes))).toHaveLength(part.keys);
    }
    // CACHE is never in a backup.
    expect((await env.BACKUPS!.list({ prefix: "rehearsal/CACHE/" })).objects).toEqual([]);

    // Damage: deletes, changes, a purge of a prefix, a stranger.
    await env.CONFIG.delete(flagKey("flag-1"));
    await env.CONFIG.put(flagKey("flag-2"), JSON.stringify({ enabled: false }));
    await env.CONFIG.put("note:plain", "text without metadata", { metadata: { changed: true } });
    for (let i = 100; i < 150; i++) await env.CONFIG.delete(flagKey(`flag-${i}`));
    await env.CONFIG.put("flag:garbage", "{not json");
    for (let i = 0; i < 120; i += 2) await env.SESSIONS.delete(hashedSessionKey(i));
    await env.SESSIONS.put(hashedSessionKey(1), JSON.stringify({ n: 1 }), { expiration: inAnHour() + 600, metadata: { v: 1 } });
    const damaged = { CONFIG: await snapshot(env.CONFIG), SESSIONS: await snapshot(env.SESSIONS) };

    const dry = await restoreAll(deps, run.backupId, "CONFIG", false);
    expect(dry.totals).toMatchObject({ added: 51, changed: 2, deleted: 1 });
    expect(dry.sample.deleted).toEqual(["flag:garbage"]);
    expect(dry.sample.added).toHaveLength(10);
    const drySessions = await restoreAll(deps, run.backupId, "SESSIONS", false);
    expect(drySessions.totals).toMatchObject({ added: 60, changed: 1, deleted: 0, unchanged: 59 });
    expectSameData(await snapshot(env.CONFIG), damaged.CONFIG);
    expectSameData(await snapshot(env.SESSIONS), damaged.SESSIONS);

    await restoreAll(deps, run.backupId, "CONFIG", true);
    await restoreAll(deps, run.backupId, "SESSIONS", true);
    expectSameData(await snapshot(env.CONFIG), before.CONFIG);
    expectSameData(await snapshot(env.SESSIONS), before.SESSIONS);

    // Run again, nothing is left to do.
    const again = await restoreAll(deps, run.backupId, "CONFIG", true);
    expect(again.totals).toMatchObject({ added: 0, changed: 0, deleted: 0, unchanged: 151 });
  }, 60_000);

  it("an apply interrupted after one slice, run again from the start, ends in the backup's state", async () => {
    const { deps, calls, take } = counted("interrupted");
    await putMany(env.CONFIG, 400, (i) => `k:${String(i).padStart(4, "0")}`, { metadata: { i: 1 } });
    const before = await snapshot(env.CONFIG);
    const { run } = await backupToEnd(deps, calls, take, ["CONFIG"]);
    await clear(env.CONFIG);

    const first = await restoreSlice(
      { kv: env.CONFIG, bucket: env.BACKUPS!, stack: "interrupted", managedFlags: [], opsBudget: 150 },
      { backupId: run.backupId, namespace: "CONFIG", apply: true },
    );
    expect(first.complete).toBe(false);
    expect(first.counts.added).toBeGreaterThan(0);
    expect((await snapshot(env.CONFIG)).size).toBeLessThan(400);

    await restoreAll(deps, run.backupId, "CONFIG", true, 150);
    expectSameData(await snapshot(env.CONFIG), before);
  }, 30_000);

  it("never overwrites or deletes flags managed as code, and says so", async () => {
    const { deps, calls, take } = counted("managed");
    // vitest.config.ts sets no MANAGED_FLAGS; this test names its own.
    const managedFlags = ["new-checkout"];
    await env.CONFIG.put(flagKey("new-checkout"), JSON.stringify({ enabled: true }));
    await env.CONFIG.put(flagKey("api-flag"), JSON.stringify({ enabled: true }));
    const { run } = await backupToEnd(deps, calls, take, ["CONFIG"]);
    await env.CONFIG.put(flagKey("new-checkout"), JSON.stringify({ enabled: false, percentage: 5 }));
    await env.CONFIG.delete(flagKey("api-flag"));

    const slice = await restoreSlice(
      { kv: env.CONFIG, bucket: env.BACKUPS!, stack: "managed", managedFlags },
      { backupId: run.backupId, namespace: "CONFIG", apply: true },
    );
    expect(slice.complete).toBe(true);
    expect(slice.counts).toMatchObject({ added: 1, changed: 0, managed: 1 });
    expect(slice.sample.managed).toEqual([flagKey("new-checkout")]);
    expect(await env.CONFIG.get(flagKey("new-checkout"))).toBe(JSON.stringify({ enabled: false, percentage: 5 }));
    expect(await env.CONFIG.get(flagKey("api-flag"))).toBe(JSON.stringify({ enabled: true }));
  });

  it("backs up a 5,000-key namespace across invocations, none making more than its budget of KV and R2 operations", async () => {
    // A namespace of its own (vitest.config.ts), standing in for CONFIG: seeding
    // 5,000 keys takes seconds, and clearing them before every test as long again.
    const bulk = env.TEST_BULK;
    if ((await bulk.list({ limit: 1 })).keys.length === 0) await putMany(bulk, 5000, (i) => `bulk:${String(i).padStart(5, "0")}`, { metadata: { i: true } });
    const budget = 40;
    const { deps, calls, take } = counted("bulk", { opsBudget: budget, pageSize: 1000 }, bulk);
    const { run, perInvocation } = await backupToEnd(deps, calls, take, ["CONFIG"]);
    expect(run.namespaces[0]).toMatchObject({ namespace: "CONFIG", status: "complete", keys: 5000, parts: 5 });
    expect(perInvocation.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...perInvocation)).toBeLessThanOrEqual(budget);
    expect(run.invocations).toBe(perInvocation.length);

    // With the default budget, the same namespace in one invocation, under KV's limit.
    const defaults = counted("bulk-default", {}, bulk);
    const one = await backupToEnd(defaults.deps, defaults.calls, defaults.take, ["CONFIG"]);
    expect(one.perInvocation).toHaveLength(1);
    expect(one.perInvocation[0]).toBeLessThanOrEqual(INVOCATION_OPS_LIMIT);
    expect(one.run.namespaces[0]!.keys).toBe(5000);
  }, 60_000);

  it("refuses SESSIONS while it holds raw session ids, and still backs up CONFIG", async () => {
    const { deps, calls, take } = counted("raw");
    await env.CONFIG.put(flagKey("a"), JSON.stringify({ enabled: true }));
    await env.SESSIONS.put(`session:${"a".repeat(32)}`, "{}");
    const { run } = await backupToEnd(deps, calls, take, ["CONFIG", "SESSIONS"]);
    expect(run.namespaces[0]).toMatchObject({ namespace: "CONFIG", status: "complete", keys: 1 });
    expect(run.namespaces[1]).toMatchObject({ namespace: "SESSIONS", status: "refused", reason: expect.stringMatching(/raw session ids/) });
    expect((await env.BACKUPS!.list({ prefix: "raw/SESSIONS/" })).objects).toEqual([]);
  });

  it("under a bucket lock, a part left by a slice that died before saving its state goes under the next number", async () => {
    await putMany(env.CONFIG, 30, (i) => `k:${String(i).padStart(2, "0")}`, { metadata: { m: 1 } });
    const before = await snapshot(env.CONFIG);
    const real = env.BACKUPS!;
    let statePuts = 0;
    const failing = new Set([3, 4]); // the save after part-0001, and the hand-back after that failure
    // R2's bucket lock: an object under a locked prefix cannot be overwritten.
    const locked = new Proxy(real, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as (...args: unknown[]) => unknown;
        if (prop !== "put") return value.bind(target);
        return async (key: string, ...rest: unknown[]) => {
          if (key.endsWith("_state.json") && failing.has(++statePuts)) throw new Error("R2 put failed: 500 Internal Error");
          if (key.includes("/part-") && (await target.head(key))) throw new Error("R2 put failed: 403 the object is locked");
          return value.call(target, key, ...rest);
        };
      },
    });
    const deps: BackupDeps = { ...backupDeps(env), bucket: locked, stack: "locked", pageSize: 10 };
    await expect(startBackup(deps, ["CONFIG"], "admin")).rejects.toMatchObject({ status: 503 });
    expect((await real.list({ prefix: "locked/CONFIG/" })).objects.map((o) => o.key.split("/").at(-1))).toEqual(["part-0001.ndjson"]);

    // The next slice, once the dead slice's lease has lapsed, starts the namespace over.
    const later = { ...deps, now: () => Date.now() + LEASE_MS + 1000 };
    let result = await continueBackup(later);
    while (result.status === "running") result = await continueBackup(later);
    expect(result.status).toBe("complete");
    const manifest = await (await real.get(manifestPath("locked", "CONFIG", result.status === "complete" ? result.backupId : "")))!.json<NamespaceManifest>();
    expect(manifest.parts.map((p) => p.name)).toEqual(["part-0002.ndjson", "part-0003.ndjson", "part-0004.ndjson"]);
    expect(manifest.keys).toBe(30);

    await clear(env.CONFIG);
    await restoreAll({ ...deps, bucket: real }, manifest.backupId, "CONFIG", true);
    expectSameData(await snapshot(env.CONFIG), before);
  });

  it("refuses to restore from a part that does not match its sha256", async () => {
    const { deps, calls, take } = counted("corrupt");
    await env.CONFIG.put(flagKey("a"), JSON.stringify({ enabled: true }));
    const { run } = await backupToEnd(deps, calls, take, ["CONFIG"]);
    await env.BACKUPS!.put(partPath("corrupt", "CONFIG", run.backupId, "part-0001.ndjson"), '{"key":"flag:a","value":"{}"}\n');
    await env.CONFIG.delete(flagKey("a"));
    await expect(restoreAll(deps, run.backupId, "CONFIG", true)).rejects.toMatchObject({ status: 502, code: "backup_corrupt" });
    expect(await env.CONFIG.get(flagKey("a"))).toBeNull();
  });

  it("the cron schedule's tick starts the same backup; the continuation tick finishes nothing when idle", async () => {
    await env.CONFIG.put(flagKey("cron"), JSON.stringify({ enabled: true }));
    const stack = env.ENVIRONMENT!;
    /** What Cloudflare does on a cron tick: the Worker's scheduled handler with a controller for that cron. */
    const tick = async (cron: string) => {
      await worker.scheduled(createScheduledController({ cron }), env);
    };
    await tick(CONTINUE_CRON);
    expect((await env.BACKUPS!.list({ prefix: `${stack}/_runs/` })).objects).toEqual([]);

    // With backups turned off (no namespaces), the schedule's tick starts nothing and does not fail.
    await worker.scheduled(createScheduledController({ cron: env.BACKUP_SCHEDULE! }), { ...env, BACKUP_NAMESPACES: "" });
    expect((await env.BACKUPS!.list({ prefix: `${stack}/` })).objects).toEqual([]);

    await tick(env.BACKUP_SCHEDULE!);
    const runs = (await env.BACKUPS!.list({ prefix: `${stack}/_runs/` })).objects;
    expect(runs).toHaveLength(1);
    const id = runs[0]!.key.split("/").at(-1)!.replace(".json", "");
    const run = await (await env.BACKUPS!.get(runPath(stack, id)))!.json<{ trigger: string; namespaces: { namespace: string; keys: number }[] }>();
    expect(run.trigger).toBe("cron");
    expect(run.namespaces[0]).toMatchObject({ namespace: "CONFIG", keys: 1 });
    expect(await env.BACKUPS!.head(statePath(stack))).toBeNull();
  });
});
