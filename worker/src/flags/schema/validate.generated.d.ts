/** The declarations of validate.generated.js (ajv's standalone code for flagd's flags.json). */
export interface SchemaError {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}
export declare const validateFlags: ((data: unknown) => boolean) & { errors?: SchemaError[] | null };
