/** What the bench page and `edgetl serve --bench` agree on, importable from both sides without their runtimes. */

/** Header carrying BenchPlan.token on POST /api/bench-results: the server accepts results only with it. */
export const BENCH_TOKEN_HEADER = 'X-Edgetl-Bench-Token';
