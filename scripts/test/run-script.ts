import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../build";

/** Runs `scripts/<script>` through tsx as `npm run` would, without an inherited ADMIN_TOKEN; resolves with its exit code and output. */
export async function runScript(script: string, args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(join(ROOT, "node_modules/.bin/tsx"), [`scripts/${script}`, ...args], {
      cwd: ROOT,
      env: { ...process.env, ADMIN_TOKEN: undefined, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
