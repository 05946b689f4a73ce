/**
 * `npm run build`: dist/worker.js, dist/manifest.json and dist/openapi.json.
 * The build itself is worker/build.ts, which the Pulumi program imports too;
 * the names below are re-exported so the commands keep one import path.
 *
 *   npm run build
 */
import { build } from "../worker/build";
import { CliError, isMain, runCommand } from "./lib/cli";

export * from "../worker/build";

if (isMain(import.meta.url)) {
  runCommand("build", async () => {
    try {
      await build({ log: (line) => console.log(line) });
    } catch (error) {
      // esbuild has already printed the errors with their source locations.
      throw new CliError(`failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
}
