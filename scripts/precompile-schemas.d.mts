import type { Plugin } from 'esbuild';

export function formatSchemas(root?: string): { $id: string; [keyword: string]: unknown }[];
export function precompiledValidatorsSource(root?: string): string;
export function precompiledValidatorsPlugin(options?: { root?: string; stubAjv?: boolean }): Plugin;
