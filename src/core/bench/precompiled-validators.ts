/**
 * Validators compiled ahead of time, by schema $id. Empty here: Node compiles each schema with Ajv at first use
 * (json-schema.ts). The browser bundle replaces this module with Ajv standalone code generated at build time
 * (scripts/precompile-schemas.mjs, called by esbuild.config.mjs), so pages validate without `new Function`.
 */
import type { ValidateFunction } from 'ajv';

export const PRECOMPILED_VALIDATORS: ReadonlyMap<string, ValidateFunction> = new Map();
