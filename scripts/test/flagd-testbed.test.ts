/**
 * Conformance with OpenFeature's flagd testbed (open-feature/flagd-testbed
 * v3.9.0, vendored in fixtures/flagd-testbed): its evaluation, targeting and
 * metadata scenarios, against `npm start`'s local stack, with the testbed's
 * flag files loaded by `npm run flags -- import`, evaluated through OFREP by
 * OpenFeature's server SDK and its OFREP provider, unchanged.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { type EvaluationContext, type EvaluationDetails, type JsonValue, OpenFeature } from "@openfeature/server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalStack, type LocalStack } from "../start";
import { parseFeature, type Scenario } from "./gherkin";
import { runScript } from "./run-script";

const TESTBED = join(import.meta.dirname, "fixtures/flagd-testbed");
const FEATURES = ["evaluation", "targeting", "metadata"];

/**
 * What is skipped, by tag, and why; every other scenario must pass.
 * - flagd's transports and sources: selectors and flag-set providers.
 * - bucketing that is not flagd's current (v2) one: the legacy v1 and the unreleased v3.
 * - a suite the testbed itself marks deprecated (superseded by @no-default-variant).
 */
export const SKIPPED_TAGS: Record<string, string> = {
  "@metadata-provider": "a selector / flag-set metadata provider: one of flagd's transports",
  "@fractional-v1": "flagd's legacy float bucketing",
  "@fractional-v3": "flagd's unreleased v3 bucketing",
  "@no-default": "deprecated by the testbed (superseded by @no-default-variant)",
};
/**
 * Rows the published OFREP provider (0.1.3) cannot express: the answer is the
 * caller's code default, which OFREP sends without a value, and the provider
 * reports a TYPE_MISMATCH where the scenario expects reason DEFAULT.
 */
const codeDefaultWithoutValue = (s: Scenario) => s.tags.includes("@no-default-variant") && s.steps.some((step) => step.text === 'the reason should be "DEFAULT"');

const skipReason = (s: Scenario) =>
  s.tags.map((tag) => SKIPPED_TAGS[tag]).find(Boolean) ?? (codeDefaultWithoutValue(s) ? "the OFREP provider 0.1.3 cannot express a code default without a value" : undefined);

type FlagType = "Boolean" | "String" | "Integer" | "Float" | "Object";

function typed(type: string, raw: string): unknown {
  switch (type) {
    case "Boolean":
      return raw === "true";
    case "Integer":
    case "Float":
      return Number(raw);
    case "Object":
      return JSON.parse(raw) as unknown;
    default:
      return raw;
  }
}

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ port: 0, ephemeral: true, adminToken: "flagd-testbed" });
  const files = readdirSync(join(TESTBED, "flags")).map((file) => join(TESTBED, "flags", file));
  // Two of the testbed's files hold rules flagd's schema refuses (on purpose, to test the errors); flagd loads them with a warning, and so does --lenient.
  const imported = await runScript("flags.ts", ["import", ...files, "--url", stack.url, "--admin-token", stack.adminToken, "--lenient"]);
  expect(imported.code, imported.stderr).toBe(0);
  expect(imported.stderr).toMatch(/import done: 65 flags and 1 evaluators from 7 files/);
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: stack.url }));
}, 90_000);
afterAll(async () => {
  await OpenFeature.close();
  await stack?.dispose();
});

/** One scenario's state: the flag asked for, the context built, the details answered. */
interface World {
  type?: FlagType;
  key?: string;
  fallback?: unknown;
  context: EvaluationContext;
  details?: EvaluationDetails<JsonValue>;
}

const STEPS: [RegExp, (world: World, match: string[], table?: string[][]) => void | Promise<void>][] = [
  [/^an option "cache" of type "CacheType" with value "disabled"$/, () => {}], // OFREP has no provider cache to turn off
  [/^a stable flagd provider$/, () => {}], // the OFREP provider, set once for every scenario
  [/^a (Boolean|String|Integer|Float|Object)-flag with key "([^"]*)" and a default value "([^"]*)"$/, (w, [, type, key, fallback]) => {
    w.type = type as FlagType;
    w.key = key;
    w.fallback = typed(type!, fallback!);
  }],
  [/^a context containing a key "([^"]*)", with type "(\w+)" and with value "([^"]*)"$/, (w, [, key, type, value]) => {
    w.context[key!] = typed(type!, value!) as never;
  }],
  [/^a context containing a nested property with outer key "([^"]*)" and inner key "([^"]*)", with value "([^"]*)"$/, (w, [, outer, inner, value]) => {
    w.context[outer!] = { [inner!]: value! };
  }],
  [/^a context containing a targeting key with value "([^"]*)"$/, (w, [, value]) => {
    w.context.targetingKey = value;
  }],
  [/^the flag was evaluated with details$/, async (w) => {
    const client = OpenFeature.getClient();
    const key = w.key!;
    const details =
      w.type === "Boolean" ? await client.getBooleanDetails(key, w.fallback as boolean, w.context)
      : w.type === "String" ? await client.getStringDetails(key, w.fallback as string, w.context)
      : w.type === "Object" ? await client.getObjectDetails(key, w.fallback as JsonValue, w.context)
      : await client.getNumberDetails(key, w.fallback as number, w.context);
    w.details = details as EvaluationDetails<JsonValue>;
  }],
  [/^the resolved details value should be "([^"]*)"$/, (w, [, value]) => {
    expect(w.details!.value, JSON.stringify(w.details)).toEqual(typed(w.type!, value!));
  }],
  [/^the reason should be "([^"]*)"$/, (w, [, reason]) => {
    expect(w.details!.reason, JSON.stringify(w.details)).toBe(reason);
  }],
  [/^the error-code should be "([^"]*)"$/, (w, [, code]) => {
    expect(w.details!.errorCode, JSON.stringify(w.details)).toBe(code === "" ? undefined : code);
  }],
  [/^the resolved metadata should contain$/, (w, _, table) => {
    for (const [key, type, value] of table!.slice(1)) expect(w.details!.flagMetadata[key!], key).toEqual(typed(type!, value!));
  }],
  [/^the resolved metadata is empty$/, (w) => {
    expect(w.details!.flagMetadata).toEqual({});
  }],
];

for (const feature of FEATURES) {
  const scenarios = parseFeature(readFileSync(join(TESTBED, "gherkin", `${feature}.feature`), "utf8"), `${feature}.feature`);
  describe(`flagd testbed: ${feature}.feature`, () => {
    it("has scenarios to run, and skips only the listed tags", () => {
      expect(scenarios.filter((s) => !skipReason(s)).length).toBeGreaterThan(0);
    });
    for (const scenario of scenarios) {
      const skipped = skipReason(scenario);
      // Outline rows share their scenario's name: the steps (with the row's values filled in) tell them apart.
      const title = `${scenario.name}: ${scenario.steps.map((step) => step.text).join("; ")} ${scenario.tags.join(" ")}`;
      (skipped ? it.skip : it)(`${title}${skipped ? ` (skipped: ${skipped})` : ""}`, async () => {
        const world: World = { context: {} };
        for (const step of scenario.steps) {
          const found = STEPS.find(([pattern]) => pattern.test(step.text));
          if (!found) throw new Error(`no step definition for: ${step.text}`);
          await found[1](world, found[0].exec(step.text)!, step.table);
        }
      });
    }
  });
}
