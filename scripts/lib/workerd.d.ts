// The workerd package ships no types; these are the two values its main module exports.
declare module "workerd" {
  /** The newest compatibility date this workerd binary supports (YYYY-MM-DD). */
  export const compatibilityDate: string;
  export const version: string;
}
