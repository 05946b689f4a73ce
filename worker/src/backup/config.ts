/**
 * The `backups` stack setting: validated by the Pulumi program and the local
 * runner (infra/stack-file.ts). Apart from ./format so the Worker's bundle
 * does not carry the schema.
 */
import * as v from "valibot";
import { describeIssues, KV_BINDINGS, type KvBinding } from "../contract.ts";
import { CONTINUE_CRON, NEVER_BACKED_UP } from "./format.ts";

/** Five cron fields as Cloudflare's Cron Triggers take them (minute hour day-of-month month day-of-week). */
const CRON_FIELD = /^(\*|\?|L|W|#|[0-9A-Za-z,\-/*#LW?]+)$/;
export function isCron(expression: string): boolean {
  const fields = expression.trim().split(/\s+/);
  return fields.length === 5 && fields.every((field) => CRON_FIELD.test(field));
}

export const BackupsConfig = v.strictObject({
  schedule: v.pipe(
    v.string("must be a cron expression"),
    v.check(isCron, "must be a cron expression of five fields, e.g. 0 3 * * * (daily at 03:00 UTC)"),
    v.check((cron) => cron.trim() !== CONTINUE_CRON, `must differ from ${CONTINUE_CRON}, the continuation trigger`),
  ),
  retainDays: v.pipe(v.number("must be a number of days"), v.integer("must be a whole number of days"), v.minValue(1), v.maxValue(3650)),
  namespaces: v.pipe(
    v.array(
      v.pipe(
        v.string(),
        v.check((name) => !NEVER_BACKED_UP.includes(name as KvBinding), "CACHE is never backed up: it is derivable from the origin"),
        v.picklist(KV_BINDINGS.filter((b) => !NEVER_BACKED_UP.includes(b)), `must be one of ${KV_BINDINGS.filter((b) => !NEVER_BACKED_UP.includes(b)).join(", ")}`),
      ),
    ),
    v.check((names) => new Set(names).size === names.length, "must not repeat a namespace"),
  ),
  /** Bucket lock: backups cannot be deleted or overwritten before retainDays (immutable backups). */
  lock: v.optional(v.boolean("must be true or false"), false),
});
export type BackupsConfig = v.InferOutput<typeof BackupsConfig>;

export const DEFAULT_BACKUPS: BackupsConfig = { schedule: "0 3 * * *", retainDays: 30, namespaces: ["CONFIG", "SESSIONS"], lock: false };

/** The setting, validated; throws an Error naming each invalid field. */
export function parseBackupsConfig(raw: unknown): BackupsConfig {
  const parsed = v.safeParse(BackupsConfig, raw);
  if (!parsed.success) throw new Error(describeIssues(parsed.issues));
  return { ...parsed.output, namespaces: parsed.output.namespaces as KvBinding[] } as BackupsConfig;
}

