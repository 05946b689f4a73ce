/**
 * Feature files as runnable scenarios, through Cucumber's own parser and
 * pickle compiler (@cucumber/gherkin): each Scenario Outline row becomes one
 * scenario with its feature's, scenario's and Examples block's tags, and the
 * Background's steps first.
 */
import { AstBuilder, compile, GherkinClassicTokenMatcher, Parser } from "@cucumber/gherkin";
import { IdGenerator } from "@cucumber/messages";

export interface Step {
  text: string;
  /** A data table under the step, row by row. */
  table?: string[][];
}
export interface Scenario {
  name: string;
  tags: string[];
  steps: Step[];
}

export function parseFeature(text: string, uri: string): Scenario[] {
  const newId = IdGenerator.incrementing();
  const document = new Parser(new AstBuilder(newId), new GherkinClassicTokenMatcher()).parse(text);
  return compile(document, uri, newId).map((pickle) => ({
    name: pickle.name,
    tags: pickle.tags.map((tag) => tag.name),
    steps: pickle.steps.map((step) => ({
      text: step.text,
      ...(step.argument?.dataTable ? { table: step.argument.dataTable.rows.map((row) => row.cells.map((cell) => cell.value)) } : {}),
    })),
  }));
}
