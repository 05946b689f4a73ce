import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { ROOT } from "../../worker/build";
import { planStack, renderSnapshot, snapshotPath } from "../../scripts/plan";
import { runScript } from "../../scripts/test/run-script";
import { PROJECT } from "../stack-file";
import { configPhase } from "./runtime/language-host";

describe("committed plan snapshots", () => {
  it.each(["dev", "prod"])("infra/plans/%s.txt matches the program (update: npm run plan -- --stack <stack> --update)", async (stack) => {
    expect(await renderSnapshot(stack)).toBe(readFileSync(snapshotPath(stack), "utf8"));
  });
});

describe("npm run plan runs the Pulumi CLI's config phase first", () => {
  /** A checkout whose Pulumi.dev.yaml is the shipped one with `changes` to its config. */
  const checkout = (changes: Record<string, unknown>) => {
    const root = mkdtempSync(join(tmpdir(), "plan-config-"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(root, "Pulumi.yaml"));
    const doc = parseYaml(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
    for (const [key, value] of Object.entries(changes)) doc.config[`${PROJECT}:${key}`] = value;
    writeFileSync(join(root, "Pulumi.dev.yaml"), stringify(doc));
    return { root, doc };
  };
  /**
   * What the runtime harness's config phase (a real preview's, as emulated)
   * says about the same files, after docs/deploy.md's `pulumi config set --secret
   * adminToken` where the file lacks it (plans stand in for that command).
   */
  const previewRefusal = (root: string, doc: { config: Record<string, unknown> }) => {
    const commands = `${PROJECT}:adminToken` in doc.config ? [] : [{ key: "adminToken", value: "a-token", secret: true }];
    try {
      configPhase("dev", { root, stackDocument: doc, commands });
    } catch (error) {
      return error as Error;
    }
    throw new Error("the config phase accepted the stack");
  };

  it.each([
    ["a secret in plain text", { adminToken: "plain-text-token" }, "Stack 'dev' with configuration key 'adminToken' must be encrypted as it's secret"],
    ["a value of the wrong type", { cacheTtlSeconds: "five minutes" }, "Stack 'dev' with configuration key 'cacheTtlSeconds' must be of type 'integer'"],
  ])("refuses %s exactly as the preview's config phase does", async (_, changes, detail) => {
    const { root, doc } = checkout(changes);
    const refusal = previewRefusal(root, doc);
    expect(refusal.message).toBe(`validating stack config: ${detail}`);
    await expect(planStack("dev", undefined, root)).rejects.toThrow(refusal);
  });

  it("prints the CLI's message and exits 1 as a command, without a stack trace", async () => {
    const { root, doc } = checkout({ workersDev: "yes" });
    const result = await runScript("plan.ts", ["--stack", "dev", "--root", root]);
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 1, stdout: "" });
    expect(result.stderr).toContain(`plan: ${previewRefusal(root, doc).message}\n`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
