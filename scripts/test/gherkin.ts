/**
 * Just enough Gherkin for OpenFeature's flagd testbed: Feature, Background,
 * Scenario, Scenario Outline with tagged Examples tables, data tables under
 * a step, tags and comments. Each outline row becomes one scenario, with the
 * tags of its feature, scenario and Examples block. (@cucumber/gherkin would
 * do this and more, with four packages of dependencies; the testbed's files
 * use nothing beyond this subset, and an unknown line throws.)
 */
export interface Step {
  text: string;
  table?: string[][];
}
export interface Scenario {
  name: string;
  tags: string[];
  steps: Step[];
  /** The Examples row this scenario was expanded from, by column. */
  example?: Record<string, string>;
}

const cells = (line: string) =>
  line
    .trim()
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());

export function parseFeature(text: string): Scenario[] {
  const scenarios: Scenario[] = [];
  let featureTags: string[] = [];
  let pendingTags: string[] = [];
  let background: Step[] = [];
  let current: { name: string; tags: string[]; steps: Step[]; outline: boolean } | undefined;
  let steps: Step[] | undefined;
  let examples: { tags: string[]; header?: string[] } | undefined;
  const flush = () => {
    if (current && !current.outline) scenarios.push({ name: current.name, tags: current.tags, steps: [...background, ...current.steps] });
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("@")) {
      pendingTags.push(...line.split(/\s+/).filter((t) => t.startsWith("@")));
      continue;
    }
    if (line.startsWith("Feature:")) {
      featureTags = pendingTags;
      pendingTags = [];
      continue;
    }
    if (line.startsWith("Background:")) {
      background = [];
      steps = background;
      continue;
    }
    const scenario = /^Scenario( Outline)?:\s*(.*)$/.exec(line);
    if (scenario) {
      flush();
      current = { name: scenario[2]!, tags: [...featureTags, ...pendingTags], steps: [], outline: Boolean(scenario[1]) };
      pendingTags = [];
      steps = current.steps;
      examples = undefined;
      continue;
    }
    if (line.startsWith("Examples:")) {
      examples = { tags: pendingTags };
      pendingTags = [];
      steps = undefined;
      continue;
    }
    const step = /^(Given|When|Then|And|But)\s+(.*)$/.exec(line);
    if (step && steps) {
      steps.push({ text: step[2]! });
      continue;
    }
    if (line.startsWith("|")) {
      if (examples && current) {
        if (!examples.header) examples.header = cells(line);
        else {
          const row = Object.fromEntries(examples.header.map((name, i) => [name, cells(line)[i] ?? ""]));
          const fill = (s: string) => s.replace(/<([^>]+)>/g, (_, name: string) => row[name] ?? `<${name}>`);
          scenarios.push({
            name: `${current.name} [${Object.values(row).join(" | ")}]`,
            tags: [...current.tags, ...examples.tags],
            steps: [...background, ...current.steps].map((s) => ({ text: fill(s.text), ...(s.table ? { table: s.table } : {}) })),
            example: row,
          });
        }
        continue;
      }
      const last = steps?.at(-1);
      if (last) {
        (last.table ??= []).push(cells(line));
        continue;
      }
    }
    throw new Error(`unsupported Gherkin line: ${line}`);
  }
  flush();
  return scenarios;
}
