/**
 * What the policies know besides the resources, read from the stack files in
 * the repository (the policy engine hands a pack resources, not config): the
 * stack's `protect` and zone, and which namespace ids other stacks adopt.
 */
import { readdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseStackConfig, readStackFiles } from "../infra/stack-file";
import type { PolicyContext } from "./rules";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export function policyContext(stack: string, options: { root?: string; today?: Date } = {}): PolicyContext {
  const root = options.root ?? ROOT;
  const config = parseStackConfig(stack, readStackFiles(stack, root));
  const otherStacksNamespaces = new Map<string, string>();
  for (const file of readdirSync(root)) {
    const other = /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1];
    if (other === undefined || other === stack) continue;
    // Another stack's file that does not parse is that stack's problem, not this one's.
    let adopted;
    try {
      adopted = parseStackConfig(other, readStackFiles(other, root)).adoptedNamespaces;
    } catch {
      continue;
    }
    for (const ns of Object.values(adopted)) {
      for (const id of [ns.id, ns.previewId]) if (id) otherStacksNamespaces.set(id, other);
    }
  }
  return { stack, protect: config.protect, zoneName: config.zoneName, otherStacksNamespaces, today: options.today ?? new Date() };
}
