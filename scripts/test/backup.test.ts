import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiClient } from "../../client/index.ts";
import { loadStackConfig, managedNames } from "../../infra/stack-file";
import { type LocalStack, startLocalStack } from "../start";
import { runScript } from "./run-script";

const ADMIN_TOKEN = "backup-test-admin-token";
const FLAGS = 30;

/** `npm run backup` and `npm run restore` as a user runs them, against `npm start` over real HTTP. */
describe("npm run backup, then npm run restore", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: ADMIN_TOKEN });
  }, 60_000);
  afterAll(() => stack?.dispose());

  it("backs up with --wait; after damage a dry run reports it and changes nothing; --apply brings every flag back", async () => {
    const api = createApiClient({ baseUrl: stack.url, adminToken: ADMIN_TOKEN });
    for (let i = 0; i < FLAGS; i++) await api.putFlag(`api-flag-${i}`, { enabled: i % 2 === 0, percentage: i });
    const before = await api.listFlags();
    // dev's flags declared as code (new-checkout, dark-mode) are among them.
    expect(before.map((f) => f.name)).toEqual(expect.arrayContaining(["new-checkout", "dark-mode", "api-flag-0"]));

    // A session made by the API (hashed at rest, issue 20): SESSIONS is backed up, not refused for raw ids.
    await api.createSession({ userId: "backup-user", email: "backup@example.com" });
    // Every key in CONFIG: these flags, and the flags and shared rules the dev stack declares as code.
    const configKeys = (await (await stack.mf.getKVNamespace("CONFIG")).list()).keys.length;
    const backup = await runScript("backup.ts", ["--url", stack.url, "--wait"], { ADMIN_TOKEN });
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(/^Starting a backup of .* and waiting for it…$/m);
    expect(backup.stdout).toMatch(new RegExp(`Backup \\S+ complete: CONFIG ${configKeys} keys in 1 part, SESSIONS 2 keys in 1 part; 1 slice`));

    // Damage: a wrong purge of flags, a change, a stranger.
    for (let i = 0; i < 10; i++) await api.deleteFlag(`api-flag-${i}`);
    await api.putFlag("api-flag-20", { enabled: false });
    await api.putFlag("stranger", { enabled: true });
    const damaged = await api.listFlags();

    const dry = await runScript("restore.ts", ["--url", stack.url, "--from", "latest", "--namespace", "CONFIG"], { ADMIN_TOKEN });
    expect(dry.code, dry.stderr).toBe(0);
    // The flags and shared rules the dev stack declares as code are kept as the code says.
    const managed = managedNames(loadStackConfig("dev")).length;
    expect(dry.stdout).toMatch(new RegExp(`CONFIG: 10 to add, 1 to change, 1 to delete, \\d+ unchanged, ${managed} managed as code \\(kept\\), 0 expired \\(skipped\\) \\(1 slice\\)`));
    expect(dry.stdout).toMatch(/^ {2}deleted: flag:stranger$/m);
    expect(dry.stdout).toMatch(/nothing was changed\. Run again with --apply/);
    expect(await api.listFlags()).toEqual(damaged);

    const apply = await runScript("restore.ts", ["--url", stack.url, "--from", "latest", "--apply"], { ADMIN_TOKEN });
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toMatch(/CONFIG: 10 added, 1 changed, 1 deleted/);
    expect(apply.stdout).toMatch(/Restored CONFIG, SESSIONS from backup/);
    expect(await api.listFlags()).toEqual(before);
  }, 60_000);

  it("with --wait, drives a run already in progress (here one left by an interrupted slice) to the end", async () => {
    const bucket = await stack.mf.getR2Bucket("BACKUPS");
    const backupId = "2026-12-05T03-00-00Z-left";
    const state = {
      backupId,
      trigger: "cron",
      startedAt: "2026-12-05T03:00:00.000Z",
      leaseUntil: 0,
      invocations: 1,
      namespaces: [{ namespace: "CONFIG", status: "running", keys: 0, bytes: 0, parts: [] }],
    };
    await bucket.put("local/_state.json", JSON.stringify(state));
    const without = await runScript("backup.ts", ["--url", stack.url], { ADMIN_TOKEN });
    expect(without.code).toBe(1);
    expect(without.stderr.trim()).toMatch(/^backup: POST \/api\/backups answered 409 \(backup_in_progress: backup 2026-12-05T03-00-00Z-left is still in progress/);
    const waited = await runScript("backup.ts", ["--url", stack.url, "--wait"], { ADMIN_TOKEN });
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).toMatch(/a backup is already in progress .*; continuing it/);
    expect(waited.stdout).toMatch(/Backup 2026-12-05T03-00-00Z-left complete: CONFIG \d+ keys in 1 part; 1 slice/);
    expect(await bucket.head("local/_state.json")).toBeNull();
  }, 30_000);

  it("fails in one line with the Worker's answer for an unknown backup or a wrong token", async () => {
    const unknown = await runScript("restore.ts", ["--url", stack.url, "--from", "2020-01-01T00-00-00Z-abcd"], { ADMIN_TOKEN });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(/^restore: GET \/api\/backups\/2020-01-01T00-00-00Z-abcd answered 404 \(not_found: no finished backup 2020-01-01T00-00-00Z-abcd/);
    const wrong = await runScript("backup.ts", ["--url", stack.url, "--admin-token", "wrong"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toMatch(/^backup: POST \/api\/backups answered 401 \(unauthorized: /);
    const missing = await runScript("restore.ts", ["--url", stack.url], { ADMIN_TOKEN });
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^restore: missing --from/);
  }, 30_000);
});
