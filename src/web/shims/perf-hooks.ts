/**
 * Browser stand-in for `node:perf_hooks` (esbuild aliases it in the web bundles): the bench's measurement loop
 * (src/node/bench/measure.ts) imports `performance` from there, and pages have the same clock as a global.
 */
export const performance: Performance = globalThis.performance;
