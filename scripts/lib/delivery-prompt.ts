/** The yes/no question deploy and promote ask before they change a stack. */
import { createInterface } from "node:readline/promises";

/** False in CI and pipes: there is nobody to answer, so the caller must pass --yes. */
export const canConfirm = () => Boolean(process.stdin.isTTY && process.stdout.isTTY);

/** Asks on the terminal; only "y" or "yes" is a yes. */
export async function askToConfirm(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await terminal.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    terminal.close();
  }
}
