/**
 * A JSON Logic interpreter (jsonlogic.com's operations, with json-logic-js's
 * truthiness and coercions) extended with flagd's operators, which live in
 * ./operators. Interpreted, never compiled: workerd forbids `new Function`.
 *
 * Hand-written rather than json-logic-engine (what flagd-core builds on):
 * that library is 38 KB minified / 10 KB gzip in the Worker bundle for the
 * same operations (BENCHMARKS.md, "Flag engine"); this file is a tenth of it.
 */

/** A rule could not be evaluated (unknown operation, malformed arguments, a $ref to no evaluator): flagd's PARSE_ERROR. */
export class RuleError extends Error {}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Data = Record<string, unknown>;

/** An operation's implementation: receives its evaluated arguments (or, for lazy ones, the raw rule arguments and an evaluator). */
export type Operation = (args: unknown[], data: Data, scope: Scope) => unknown;

export interface Scope {
  /** Evaluates a sub-rule against `data` (arrays of rules element-wise). */
  run(rule: unknown, data: Data): unknown;
  /** Named rules (`$evaluators`) a `{"$ref": name}` stands for. */
  evaluators: Record<string, unknown>;
  /** The data of the whole evaluation (map/filter change `data` to the element). */
  root: Data;
}

/** json-logic-js's truthiness: an empty array is false, as are 0, "", null and false. */
export const truthy = (value: unknown): boolean => (Array.isArray(value) ? value.length > 0 : Boolean(value));

/** `var`: a dot path into the data ("" is the data itself); missing → the default or null. */
function lookup(data: unknown, path: unknown, fallback: unknown = null): unknown {
  if (path === null || path === undefined || path === "") return data;
  let current: unknown = data;
  for (const part of String(path).split(".")) {
    if (current === null || current === undefined || typeof current !== "object") return fallback;
    current = (current as Record<string, unknown>)[part];
    if (current === undefined) return fallback;
  }
  return current ?? fallback;
}

const num = (value: unknown) => Number(value);
const compare = (op: (a: never, b: never) => boolean) => (args: unknown[]) =>
  args.length === 3 ? op(args[0] as never, args[1] as never) && op(args[1] as never, args[2] as never) : op(args[0] as never, args[1] as never);

/** Operations whose arguments are evaluated before the call. */
const EAGER: Record<string, (args: unknown[], data: Data) => unknown> = {
  var: (args, data) => lookup(data, args[0], args[1]),
  missing: (args, data) => {
    const keys = Array.isArray(args[0]) ? args[0] : args;
    return keys.filter((key) => lookup(data, key) === null || lookup(data, key) === "");
  },
  missing_some: (args, data) => {
    const [need, keys] = args as [number, unknown[]];
    const missing = (keys ?? []).filter((key) => lookup(data, key) === null || lookup(data, key) === "");
    return (keys ?? []).length - missing.length >= need ? [] : missing;
  },
  // eslint-disable-next-line eqeqeq
  "==": ([a, b]) => a == b,
  "===": ([a, b]) => a === b,
  // eslint-disable-next-line eqeqeq
  "!=": ([a, b]) => a != b,
  "!==": ([a, b]) => a !== b,
  "!": ([a]) => !truthy(a),
  "!!": ([a]) => truthy(a),
  ">": ([a, b]) => (a as number) > (b as number),
  ">=": ([a, b]) => (a as number) >= (b as number),
  "<": compare((a, b) => a < b),
  "<=": compare((a, b) => a <= b),
  max: (args) => (args.length ? Math.max(...args.map(num)) : null),
  min: (args) => (args.length ? Math.min(...args.map(num)) : null),
  "+": (args) => args.reduce<number>((sum, a) => sum + num(a), 0),
  "*": (args) => args.reduce<number>((product, a) => product * num(a), 1),
  "-": (args) => (args.length === 1 ? -num(args[0]) : num(args[0]) - num(args[1])),
  "/": ([a, b]) => num(a) / num(b),
  "%": ([a, b]) => num(a) % num(b),
  cat: (args) => args.map((a) => (a === null || a === undefined ? "" : String(a))).join(""),
  substr: ([text, start, length]) => {
    const s = String(text);
    const from = num(start) < 0 ? s.length + num(start) : num(start);
    if (length === undefined) return s.slice(from);
    return num(length) < 0 ? s.slice(from, s.length + num(length)) : s.slice(from, from + num(length));
  },
  in: ([a, b]) => (Array.isArray(b) || typeof b === "string" ? b.includes(a as never) : false),
  merge: (args) => args.flat(),
  log: ([a]) => a,
};

/** Operations that decide which arguments to evaluate. */
const LAZY: Record<string, Operation> = {
  if: (args, data, scope) => {
    let i = 0;
    for (; i + 1 < args.length; i += 2) if (truthy(scope.run(args[i], data))) return scope.run(args[i + 1], data);
    return i < args.length ? scope.run(args[i], data) : null;
  },
  and: (args, data, scope) => {
    let value: unknown = true;
    for (const arg of args) if (!truthy((value = scope.run(arg, data)))) return value;
    return value;
  },
  or: (args, data, scope) => {
    let value: unknown = false;
    for (const arg of args) if (truthy((value = scope.run(arg, data)))) return value;
    return value;
  },
  map: (args, data, scope) => items(args, data, scope).map((item) => scope.run(args[1], item as Data)),
  filter: (args, data, scope) => items(args, data, scope).filter((item) => truthy(scope.run(args[1], item as Data))),
  all: (args, data, scope) => {
    const list = items(args, data, scope);
    return list.length > 0 && list.every((item) => truthy(scope.run(args[1], item as Data)));
  },
  some: (args, data, scope) => items(args, data, scope).some((item) => truthy(scope.run(args[1], item as Data))),
  none: (args, data, scope) => !items(args, data, scope).some((item) => truthy(scope.run(args[1], item as Data))),
  reduce: (args, data, scope) =>
    items(args, data, scope).reduce(
      (accumulator, current) => scope.run(args[1], { current, accumulator } as Data),
      scope.run(args[2], data),
    ),
};
LAZY["?:"] = LAZY.if!;

function items(args: unknown[], data: Data, scope: Scope): unknown[] {
  const list = scope.run(args[0], data);
  return Array.isArray(list) ? list : [];
}

/** The operation of a rule object `{op: args}`: its only key; undefined for an object with none or several (no array allocated: this runs per node per evaluation). */
function operationOf(rule: object): string | undefined {
  let op: string | undefined;
  for (const key in rule) {
    if (op !== undefined) return undefined;
    op = key;
  }
  return op;
}

/**
 * Evaluates `rule` against `data`. `custom` adds operations (flagd's); their
 * arguments are evaluated first unless they are listed in `lazy`. Throws
 * RuleError for an operation nobody defines or a `$ref` to no evaluator.
 */
export function createInterpreter(custom: Record<string, Operation>) {
  function run(rule: unknown, data: Data, scope: Scope): unknown {
    if (Array.isArray(rule)) return rule.map((item) => run(item, data, scope));
    if (rule === null || typeof rule !== "object") return rule;
    const op = operationOf(rule);
    if (op === undefined) {
      if (Object.keys(rule).length === 0) return rule;
      throw new RuleError(`a rule object must have exactly one operation, found ${Object.keys(rule).join(", ")}`);
    }
    const raw = (rule as Record<string, unknown>)[op];
    if (op === "$ref") {
      if (typeof raw !== "string" || !Object.hasOwn(scope.evaluators, raw)) throw new RuleError(`$ref to an unknown evaluator ${JSON.stringify(raw)}`);
      return run(scope.evaluators[raw], data, scope);
    }
    const args = Array.isArray(raw) ? raw : [raw];
    const lazy = LAZY[op];
    if (lazy) return lazy(args, data, scope);
    const evaluated = args.map((arg) => run(arg, data, scope));
    const eager = EAGER[op];
    if (eager) return eager(evaluated, data);
    const extra = custom[op];
    if (extra) return extra(evaluated, data, scope);
    throw new RuleError(`unknown operation ${JSON.stringify(op)}`);
  }
  return (rule: unknown, data: Data, evaluators: Record<string, unknown> = {}): unknown => {
    const scope: Scope = { run: (sub, subData) => run(sub, subData, scope), evaluators, root: data };
    return run(rule, data, scope);
  };
}
