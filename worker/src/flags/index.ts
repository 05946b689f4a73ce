/**
 * The flag engine: one library for every host, the way @openfeature/flagd-core
 * is one evaluator for every flagd provider.
 *
 * Design:
 * - Boundary. Plain data in, plain data out: no Hono, no Request, no KV, no
 *   clock of its own. The Worker's routes (evaluation, OFREP, the write API),
 *   the Pulumi program (stack-file validation, the plan's readable diff) and
 *   the scripts (`npm run flags -- import/export`) import this folder and
 *   nothing else to read, check or evaluate a flag, so a definition means the
 *   same thing wherever it is read.
 * - Format. flagd's flag-definition format (./model): `state`, `variants` of
 *   any JSON type, `defaultVariant` (absent or null: the caller's default),
 *   `targeting` in JSON Logic, `metadata`, and a document's shared
 *   `$evaluators`. The seed's shorthand `{enabled, percentage, allowedUsers}`
 *   stays a first-class form, evaluated by its own unchanged rules (bucketing
 *   by MurmurHash3 of `<flag>:<userId>` modulo 10,000), because flagd's
 *   `fractional` buckets differently and would flip users on the upgrade.
 * - Validation (./schema): flagd's published JSON schema, vendored and
 *   compiled ahead of time (workerd cannot compile schemas at run time); each
 *   problem names the flag or evaluator and the JSON path in it.
 * - Evaluation (./evaluate, ./json-logic, ./operators): a small JSON Logic
 *   interpreter with flagd's `fractional` (flagd's current bucketing),
 *   `sem_ver`, `starts_with`, `ends_with`, `$ref` and the `$flagd.flagKey` /
 *   `$flagd.timestamp` context. Synchronous and allocation-light: it runs on
 *   the hottest route. BENCHMARKS.md ("Flag engine") has the measurements
 *   behind writing it rather than bundling flagd-core or json-logic-engine.
 * - Storage is not here: the Worker's store keeps `flag:<key>` and
 *   `evaluator:<name>` in CONFIG with the codecs of ../contract.
 */
export { evaluate, type EvaluationContext, type EvaluateOptions, type Reason, type ErrorCode, type Resolution } from "./evaluate";
export { RuleError } from "./json-logic";
export {
  canonicalJson,
  FLAGD_SCHEMA_URL,
  type FlagDefinition,
  type FlagDocument,
  type FlagdFlag,
  type FlagValue,
  evaluatorRefs,
  inlineEvaluators,
  isShorthand,
  readDefinition,
  readEvaluator,
  Shorthand,
} from "./model";
export { definitionsOf, describeProblem, type Problem, type Validation, validateDocument } from "./schema";
