import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { compatibilityDate as workerdCompatibilityDate } from "workerd";
import { describe, expect, it } from "vitest";
import { COMPATIBILITY_DATE } from "../../worker/src/contract";
import { ROOT } from "../build";

const npm = async (...args: string[]) => (await promisify(execFile)("npm", args, { cwd: ROOT })).stdout;

interface NpmTree {
  version?: string;
  dependencies?: Record<string, NpmTree>;
}

/** Every version of `name` anywhere in `npm ls --all`'s tree. */
function versionsOf(name: string, tree: NpmTree, found = new Set<string>()): Set<string> {
  for (const [dependency, node] of Object.entries(tree.dependencies ?? {})) {
    if (dependency === name && node.version) found.add(node.version);
    versionsOf(name, node, found);
  }
  return found;
}

describe("one runtime for every local path", () => {
  // npm start, the bench and the soak (miniflare), the tests (the vitest plugin's
  // miniflare) and wrangler must all run the same workerd.
  it.each(["workerd", "miniflare", "wrangler"])("installs one version of %s", async (name) => {
    const tree = JSON.parse(await npm("ls", name, "--all", "--json")) as NpmTree;
    expect([...versionsOf(name, tree)]).toHaveLength(1);
  });

  it("targets a compatibility date the installed workerd supports", () => {
    expect(COMPATIBILITY_DATE <= workerdCompatibilityDate).toBe(true);
  });
});

describe("install scripts", () => {
  it("has every dependency's install script approved or denied in package.json's allowScripts", async () => {
    const { allowScripts } = JSON.parse(await npm("install-scripts", "ls", "--json")) as { allowScripts: unknown[] };
    expect(allowScripts).toEqual([]);
  });
});
