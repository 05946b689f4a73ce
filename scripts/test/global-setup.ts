import { ensureBuilt } from "../build";

/** Builds dist/ once before the node tests, so no two test files write it at the same time. */
export default async function setup() {
  await ensureBuilt((line) => console.log(line));
}
