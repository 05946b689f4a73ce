import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { flagKey } from "../src/contract";
import { admin, appClient, errorOf, jsonInit } from "./helpers";

/** Each test has its own stack name, so its backups are apart from the other tests'. */
let stack = 0;
const client = (overrides: Record<string, unknown> = {}, options = {}) => appClient(options, { ENVIRONMENT: `routes-${++stack}`, ...overrides });

describe("backup admin routes", () => {
  beforeEach(async () => {
    for (const { name } of (await env.CONFIG.list()).keys) await env.CONFIG.delete(name);
    for (const { name } of (await env.SESSIONS.list()).keys) await env.SESSIONS.delete(name);
  });

  it("start a backup, list it, and restore CONFIG from latest: a dry run first, then an apply", async () => {
    const api = client({ MANAGED_FLAGS: "dark-mode" });
    await env.CONFIG.put(flagKey("a"), JSON.stringify({ enabled: true }));
    await env.CONFIG.put(flagKey("dark-mode"), JSON.stringify({ enabled: true }));

    const started = await api("/api/backups", { method: "POST", headers: admin });
    expect(started.status).toBe(200);
    const slice = (await started.json()) as { status: string; backupId: string; run: { namespaces: { namespace: string; keys: number }[] } };
    expect(slice.status).toBe("complete");
    expect(slice.run.namespaces).toEqual([
      expect.objectContaining({ namespace: "CONFIG", status: "complete", keys: 2 }),
      expect.objectContaining({ namespace: "SESSIONS", status: "complete", keys: 0 }),
    ]);
    const listing = (await (await api("/api/backups", { headers: admin })).json()) as { runs: { backupId: string }[] };
    expect(listing.runs.map((r) => r.backupId)).toEqual([slice.backupId]);
    expect(((await (await api("/api/backups/latest", { headers: admin })).json()) as { backupId: string }).backupId).toBe(slice.backupId);

    await env.CONFIG.delete(flagKey("a"));
    await env.CONFIG.put(flagKey("dark-mode"), JSON.stringify({ enabled: false }));
    const dry = await api("/api/backups/latest/restore", jsonInit("POST", { namespace: "CONFIG" }, admin));
    expect(dry.status).toBe(200);
    expect(await dry.json()).toMatchObject({ apply: false, complete: true, counts: { added: 1, managed: 1 }, sample: { added: [flagKey("a")], managed: [flagKey("dark-mode")] } });
    expect(await env.CONFIG.get(flagKey("a"))).toBeNull();

    const applied = await api(`/api/backups/${slice.backupId}/restore`, jsonInit("POST", { namespace: "CONFIG", apply: true }, admin));
    expect(await applied.json()).toMatchObject({ apply: true, complete: true, counts: { added: 1 } });
    expect(await env.CONFIG.get(flagKey("a"))).toBe(JSON.stringify({ enabled: true }));
    expect(await env.CONFIG.get(flagKey("dark-mode"))).toBe(JSON.stringify({ enabled: false }));
  });

  it("a restore too large for one call goes on with the signed cursor it returns; a forged or borrowed cursor is a 400", async () => {
    // A budget of 150 operations a call: one chunk of 100 keys each.
    const api = client({}, { backupOpsBudget: 150 });
    await Promise.all(Array.from({ length: 250 }, (_, i) => env.CONFIG.put(`k:${String(i).padStart(3, "0")}`, "v")));
    const { backupId } = (await (await api("/api/backups", { method: "POST", headers: admin })).json()) as { backupId: string };
    for (let i = 0; i < 250; i += 2) await env.CONFIG.delete(`k:${String(i).padStart(3, "0")}`);
    const restore = (body: object) => api(`/api/backups/${backupId}/restore`, jsonInit("POST", { namespace: "CONFIG", apply: true, ...body }, admin));
    let slice = (await (await restore({})).json()) as { complete: boolean; cursor?: string; counts: { added: number } };
    let calls = 1;
    let added = slice.counts.added;
    expect(slice.complete).toBe(false);
    const dryCursor = await api(`/api/backups/${backupId}/restore`, jsonInit("POST", { namespace: "CONFIG", cursor: slice.cursor }, admin));
    expect(await errorOf(dryCursor)).toMatchObject({ status: 400, code: "invalid_request" });
    const forged = await restore({ cursor: "eyJwaGFzZSI6ImFkZCJ9.AAAA" });
    expect(await errorOf(forged)).toMatchObject({ status: 400, code: "invalid_request" });
    while (!slice.complete) {
      slice = (await (await restore({ cursor: slice.cursor })).json()) as typeof slice;
      added += slice.counts.added;
      calls += 1;
    }
    expect(calls).toBeGreaterThan(2);
    expect(added).toBe(125);
    expect((await env.CONFIG.list()).keys).toHaveLength(250);
  });

  it("refuses a second start while a backup is in progress", async () => {
    const api = client();
    await env.BACKUPS!.put(`routes-${stack}/_state.json`, JSON.stringify({ backupId: "2026-01-01T00-00-00Z-abcd" }));
    const res = await api("/api/backups", { method: "POST", headers: admin });
    expect(await errorOf(res)).toMatchObject({ status: 409, code: "backup_in_progress" });
  });

  it("answers 400 for a malformed id, 404 for an unknown one, 401 without the token, 503 without a bucket", async () => {
    const api = client();
    expect((await errorOf(await api("/api/backups/../x", { headers: admin }))).status).toBe(404);
    expect(await errorOf(await api("/api/backups/nope", { headers: admin }))).toMatchObject({ status: 400, code: "invalid_request" });
    expect(await errorOf(await api("/api/backups/2026-01-01T00-00-00Z-abcd", { headers: admin }))).toMatchObject({ status: 404, code: "not_found" });
    expect(await errorOf(await api("/api/backups/latest/restore", jsonInit("POST", { namespace: "CACHE" }, admin)))).toMatchObject({ status: 400 });
    expect((await api("/api/backups", { method: "POST" })).status).toBe(401);
    const bucketless = client({ BACKUPS: undefined });
    expect(await errorOf(await bucketless("/api/backups", { headers: admin }))).toMatchObject({ status: 503, code: "unavailable" });
  });
});
