import { Hono } from "hono/tiny";
import { BackupParams, RestoreBody } from "../api-schemas";
import { continueBackup, findRun, listBackups, type SliceResult, startBackup } from "../backup/backup";
import { BackupError } from "../backup/ops";
import { type RestoreCursor, restoreSlice } from "../backup/restore";
import { backupDeps, configuredNamespaces } from "../backup/schedule";
import type { Deps } from "../app";
import type { AppEnv } from "../env";
import { ApiError, unavailable } from "../errors";
import { BACKUPS_SCOPE } from "../backup/format";
import { requireScope } from "../middleware/admin";
import { jsonBody, validate } from "../middleware/validate";
import { openCursor, signCursor } from "../purge-cursor";
import { json } from "../respond";

/**
 * Backups and restores over the admin API. Guarded by the admin token until
 * scoped tokens exist; then by the `backups` scope (BACKUPS_SCOPE).
 */
export function backupRoutes({ now, backupOpsBudget: opsBudget, kvTimeoutMs: timeoutMs }: Deps) {
  return new Hono<AppEnv>()
    .get("/api/backups", requireScope(BACKUPS_SCOPE), async (c) => {
      const { bucket, stack } = engine(() => backupDeps(c.env, { timeoutMs }));
      return json(await engineCall(() => listBackups(bucket, stack)));
    })
    .post("/api/backups", requireScope(BACKUPS_SCOPE), async (c) => {
      const deps = engine(() => backupDeps(c.env, { now, opsBudget, timeoutMs }));
      return json(answer(await engineCall(() => startBackup(deps, configuredNamespaces(c.env), "admin"))));
    })
    .post("/api/backups/continue", requireScope(BACKUPS_SCOPE), async (c) => {
      const deps = engine(() => backupDeps(c.env, { now, opsBudget, timeoutMs }));
      return json(answer(await engineCall(() => continueBackup(deps))));
    })
    .get("/api/backups/:id", requireScope(BACKUPS_SCOPE), validate("param", BackupParams), async (c) => {
      const { bucket, stack } = engine(() => backupDeps(c.env, { timeoutMs }));
      return json(await engineCall(() => findRun(bucket, stack, c.req.valid("param").id)));
    })
    .post("/api/backups/:id/restore", requireScope(BACKUPS_SCOPE), validate("param", BackupParams), jsonBody(RestoreBody), async (c) => {
      const deps = engine(() => backupDeps(c.env, { now, opsBudget, timeoutMs }));
      const { namespace, apply, cursor } = c.req.valid("json");
      const run = await engineCall(() => findRun(deps.bucket, deps.stack, c.req.valid("param").id));
      // The cursor is signed for this backup, namespace and mode, with the admin token (requireScope admitted the request, so ADMIN_TOKEN is set: a Worker without it answers 503 on every admin route).
      const secret = c.env.ADMIN_TOKEN!;
      const scope = `restore:${run.backupId}:${namespace}:${apply}`;
      let opened: RestoreCursor | undefined;
      if (cursor !== undefined) {
        const payload = await openCursor(secret, scope, cursor);
        if (payload === undefined) throw new ApiError(400, "invalid_request", "invalid request body: cursor: is not one this API returned for this backup, namespace and mode");
        opened = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/"))) as RestoreCursor;
      }
      const managedFlags = (c.env.MANAGED_FLAGS ?? "").split(",").map((name) => name.trim()).filter(Boolean);
      const slice = await engineCall(() =>
        restoreSlice({ kv: deps.kv[namespace], bucket: deps.bucket, stack: deps.stack, managedFlags, now, opsBudget, timeoutMs }, { backupId: run.backupId, namespace, apply, cursor: opened }),
      );
      const { cursor: next, ...rest } = slice;
      if (!next) return json(rest);
      const payload = btoa(JSON.stringify(next)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
      return json({ ...rest, cursor: await signCursor(secret, scope, payload) });
    });
}

/** The slice as the API shows it: the state in progress is `inProgress`. */
function answer(result: SliceResult) {
  if (result.status === "running") {
    const { state, ...rest } = result;
    return { ...rest, inProgress: state };
  }
  return result;
}

/** The engine's own errors as the API's envelope; anything else stays a bug (500). */
function engine<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    throw toApiError(error);
  }
}
async function engineCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toApiError(error);
  }
}
function toApiError(error: unknown): unknown {
  if (!(error instanceof BackupError)) return error;
  return error.status === 503 ? unavailable(error.message) : new ApiError(error.status, error.code, error.message);
}
