/**
 * Validation with flagd's published JSON schema (flags.json and targeting.json
 * from open-feature/flagd-schemas, tag json/json-schema-v0.2.15, vendored in
 * ./schema and compiled ahead of time by scripts/vendor-flagd-schema.ts).
 *
 * Every place a definition enters (the API, the stack file and plan, import)
 * calls `validateDocument`; each problem names the flag (or evaluator) and
 * the JSON path inside it. Shorthand flags are checked against their own
 * schema instead. Like flagd (and flagd-core), `lenient` turns schema
 * violations inside rules (`targeting`, `$evaluators`) into warnings, since
 * flagd loads such flags and reports PARSE_ERROR when they are evaluated;
 * structural problems (state, variants, defaultVariant) are always errors.
 */
import * as v from "valibot";
import { FLAG_NAME_PATTERN } from "../contract";
import { type FlagDefinition, type FlagDocument, readDefinition, Shorthand } from "./model";
import { type SchemaError, validateFlags as schemaValidate } from "./schema/validate.generated.js";

export interface Problem {
  /** "flags.<name>", "$evaluators.<name>", or "" for the document. */
  where: string;
  /** JSON Pointer inside that flag or evaluator, "" for itself. */
  path: string;
  message: string;
}

export interface Validation {
  errors: Problem[];
  warnings: Problem[];
}

export const describeProblem = ({ where, path, message }: Problem) => `${where || "document"}${path ? ` at ${path}` : ""}: ${message}`;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const decodePointer = (segment: string) => segment.replace(/~1/g, "/").replace(/~0/g, "~");

/** The most specific of ajv's errors (the deepest path; anyOf branches pile up shallower ones). */
function deepest(errors: SchemaError[]): SchemaError {
  return errors.reduce((best, error) => (error.instancePath.split("/").length > best.instancePath.split("/").length ? error : best));
}

function schemaMessage(error: SchemaError): string {
  const extra = error.params?.additionalProperty ?? error.params?.allowedValues;
  return `${error.message ?? "is invalid"}${extra === undefined ? "" : ` (${JSON.stringify(extra)})`}`;
}

/** A schema error at `/flags/<name>/…` or `/$evaluators/<name>/…`, as a problem naming that flag or evaluator. */
function toProblem(error: SchemaError): Problem {
  const [, section = "", name, ...rest] = error.instancePath.split("/");
  if (name === undefined) return { where: section ? decodePointer(section) : "", path: "", message: schemaMessage(error) };
  return { where: `${decodePointer(section)}.${decodePointer(name)}`, path: rest.length ? `/${rest.join("/")}` : "", message: schemaMessage(error) };
}

/**
 * Validates a flagd document (`{flags, $evaluators?, metadata?}`) whose
 * flags may also be shorthand. Flags are checked one by one so that every
 * bad flag is named, not only the first.
 */
export function validateDocument(document: unknown, { lenient = false } = {}): Validation {
  const result: Validation = { errors: [], warnings: [] };
  if (!isRecord(document)) return { errors: [{ where: "", path: "", message: "a flags document must be a JSON object with a `flags` map" }], warnings: [] };
  if (!isRecord(document.flags)) result.errors.push({ where: "", path: "/flags", message: "must be a map of flag name to definition" });
  const flags = isRecord(document.flags) ? document.flags : {};
  const evaluators = document.$evaluators ?? {};
  for (const [name, definition] of Object.entries(flags)) {
    if (!FLAG_NAME_PATTERN.test(name)) {
      result.errors.push({ where: `flags.${name}`, path: "", message: "is not a valid flag name (1-128 characters of A-Z a-z 0-9 _ . : -, starting with a letter or digit)" });
      continue;
    }
    checkFlag(name, definition, result, lenient);
  }
  // The evaluators and the set metadata, with no flags, through the same schema.
  const { flags: _flags, ...rest } = document;
  if (!schemaValidate({ ...rest, flags: {} })) {
    const problem = toProblem(deepest(schemaValidate.errors ?? []));
    (lenient && problem.where.startsWith("$evaluators.") ? result.warnings : result.errors).push(problem);
  }
  if (isRecord(evaluators)) {
    for (const [name, rule] of Object.entries(evaluators)) {
      if (!FLAG_NAME_PATTERN.test(name)) result.errors.push({ where: `$evaluators.${name}`, path: "", message: "is not a valid evaluator name (the same rules as a flag name)" });
      if (!isRecord(rule)) result.errors.push({ where: `$evaluators.${name}`, path: "", message: "must be a JSON Logic rule (an object)" });
    }
  }
  return result;
}

function checkFlag(name: string, definition: unknown, result: Validation, lenient: boolean): void {
  const where = `flags.${name}`;
  if (isRecord(definition) && "enabled" in definition && !("state" in definition)) {
    const parsed = v.safeParse(Shorthand, definition);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const path = v.getDotPath(issue);
      result.errors.push({ where, path: path ? `/${path.replace(/\./g, "/")}` : "", message: issue.message });
    }
    return;
  }
  if (!schemaValidate({ flags: { [name]: definition } })) {
    const problem = toProblem(deepest(schemaValidate.errors ?? []));
    const inRule = problem.path === "/targeting" || problem.path.startsWith("/targeting/");
    // Outside the rule, the schema's errors are what readDefinition refuses too; report the schema's.
    (lenient && inRule ? result.warnings : result.errors).push(problem);
    if (!(lenient && inRule)) return;
  }
  if (!readDefinition(definition)) {
    result.errors.push({ where, path: "/defaultVariant", message: "must be null or the name of one of the variants" });
  }
}

/** The definitions of a document that passed validation, typed. */
export function definitionsOf(document: FlagDocument): Record<string, FlagDefinition> {
  return Object.fromEntries(Object.entries(document.flags).map(([name, flag]) => [name, readDefinition(flag)!]));
}
