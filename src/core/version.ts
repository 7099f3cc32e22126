/** Replaced at bundle time by esbuild (define); falls back to the package version for ts-node test runs. */
declare const __EDGETL_VERSION__: string | undefined;
export const EDGETL_VERSION: string = typeof __EDGETL_VERSION__ === 'string' ? __EDGETL_VERSION__ : '0.1.0';
