/**
 * Reads the stack's Pulumi config once into a typed, validated object, before
 * any resource is registered. The rules live in ./stack-file so the offline
 * plan and the local runner apply the same ones.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, PROJECT, SECRET_KEYS, type StackConfig, parseStackConfig } from "./stack-file";

export interface Config extends StackConfig {
  adminToken: pulumi.Output<string>;
  /** The admin token being rotated out; undefined when unset or empty, so no empty secret is bound. */
  adminTokenPrevious: pulumi.Output<string> | undefined;
}

/**
 * Whether the CLI handed the program this key as a secret (a `secure:` value,
 * listed in PULUMI_CONFIG_SECRET_KEYS). The runtime exports the function
 * (runtime/config.js) but its typings leave it out.
 */
function isConfigSecret(key: string): boolean {
  const check = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;
  if (typeof check !== "function") throw new Error("@pulumi/pulumi no longer exports runtime.isConfigSecret; infra/config.ts needs another way to tell a secret config value");
  return check(key);
}

export function readConfig(): Config {
  const stack = pulumi.getStack();
  const prefix = `${PROJECT}:`;
  const raw = Object.fromEntries(
    Object.entries(pulumi.runtime.allConfig())
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value] as const)
      .filter(([key]) => !(SECRET_KEYS as readonly string[]).includes(key)),
  );
  const config = new pulumi.Config(PROJECT);
  try {
    // Under the real engine (preview or up), placeholder IDs are refused; the
    // mock engine used by tests and `npm run plan` has none.
    const parsed = parseStackConfig(stack, raw, { deploying: pulumi.runtime.hasEngine() });
    if (!config.get("adminToken")) {
      throw new ConfigError(
        stack,
        "adminToken",
        `is required; set it with \`pulumi config set --secret adminToken <token> --stack ${stack}\``,
      );
    }
    // The plain value is read only to see whether it is set; what reaches the program is the secret.
    const adminTokenPrevious = config.get("adminTokenPrevious") ? config.requireSecret("adminTokenPrevious") : undefined;
    // Pulumi.yaml cannot make the CLI refuse a plain-text value for this
    // optional key (see its comment there), so the program does.
    if (adminTokenPrevious && !isConfigSecret(`${PROJECT}:adminTokenPrevious`)) {
      throw new ConfigError(
        stack,
        "adminTokenPrevious",
        `is stored in plain text in Pulumi.${stack}.yaml; set it with \`pulumi config set --secret adminTokenPrevious <old token> --stack ${stack}\``,
      );
    }
    return { ...parsed, adminToken: config.requireSecret("adminToken"), adminTokenPrevious };
  } catch (error) {
    // RunError: Pulumi prints the message alone, without a stack trace.
    if (error instanceof ConfigError) throw new pulumi.RunError(error.message);
    throw error;
  }
}
