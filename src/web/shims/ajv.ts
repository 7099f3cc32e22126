/**
 * Stands in for Ajv in the browser bundle (esbuild.config.mjs): pages validate with validators precompiled at build
 * time (scripts/precompile-schemas.mjs), never compile one (Ajv's compiler needs `new Function`, which a strict
 * Content-Security-Policy forbids). A schema that reaches compile was not precompiled: say which.
 */
export class Ajv {
  getSchema(_id: string): undefined {
    return undefined;
  }
  addSchema(_schema: unknown): this {
    return this;
  }
  compile(schema: { $id?: unknown }): never {
    throw new Error(
      `JSON Schema ${typeof schema.$id === 'string' ? schema.$id : '(without $id)'} is not precompiled into this browser bundle: only src/core/formats/*.schema.json are (scripts/precompile-schemas.mjs)`,
    );
  }
}

export { Ajv as Ajv2020 };
