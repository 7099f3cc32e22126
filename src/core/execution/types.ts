/** Execution providers edgetl knows. Runtime-neutral types; the Node seam is execution/session.ts. */
export type ExecutionProviderName = 'cpu' | 'webgpu' | 'cuda' | 'wasm';
export type ExecutionProviderRequest = ExecutionProviderName | 'auto';

export interface ExecutionOptions {
  /** Provider to use; `auto` picks the best real hardware, never a software WebGPU adapter. Default `auto`. */
  ep?: ExecutionProviderRequest;
  /** Fail instead of falling back when the requested provider can't run. */
  strictEp?: boolean;
  intraOpThreads?: number;
  interOpThreads?: number;
  /**
   * Let onnxruntime's idle pool threads spin instead of sleeping between runs. Default false: spinning threads burn
   * the cores the image decoders share with inference (on 2 cores, `edgetl embed` of 1,000 photos ran 1.26x faster
   * with two non-spinning threads than with one, and spinning made two threads cost 1.2x the CPU). Turn it on for
   * latency-only loops that run nothing else on the machine.
   */
  allowSpinning?: boolean;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA device id (default 0). */
  cudaDeviceId?: number;
  /**
   * For GPU providers, find out (in a child process, from onnxruntime's verbose log) which nodes it left on the CPU
   * and report them. Costs one extra session creation. Default true.
   */
  checkPlacement?: boolean;
  /** onnxruntime's log level for the session: 0 verbose .. 4 fatal (default 3, errors only). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface ProviderFallback {
  provider: ExecutionProviderName;
  reason: string;
}

export interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** True for SwiftShader or any other CPU-emulated adapter: fine for correctness, never for speed. */
  software: boolean;
}

/** What actually ran, and why anything else did not. */
export interface ProviderReport {
  requested: ExecutionProviderRequest;
  used: ExecutionProviderName;
  fallbacks: ProviderFallback[];
  adapter?: AdapterInfo;
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Plain-language facts a user should know about this run (e.g. software adapter, nodes left on CPU). */
  notes?: string[];
  /** Where onnxruntime put the graph's nodes (GPU providers, when checked). */
  placement?: NodePlacement[];
}

/** Nodes onnxruntime assigned to one provider; `ops` counts op types when it listed them. */
export interface NodePlacement {
  provider: string;
  nodes: number;
  ops: Record<string, number>;
}

/** A float32 output read back to the CPU. */
export interface SessionOutput {
  data: Float32Array;
  dims: number[];
}

/**
 * A loaded model on one provider: the contract both runtimes implement, NodeBackboneSession (execution/session.ts,
 * onnxruntime-node) and WebInferenceSession (execution/web-session.ts, onnxruntime-web).
 */
export interface BackboneSession {
  /** The (first) graph input, fed by `run`. */
  readonly inputName: string;
  readonly outputNames: readonly string[];
  /** The input's dims from the model's metadata: a number when fixed, the symbolic name (e.g. 'N') when free. */
  readonly inputDims: readonly (number | string)[] | undefined;
  readonly provider: ProviderReport;
  /** Run on one float32 input; returns `outputName` (default: the first output) as float32. */
  run(input: Float32Array, dims: readonly number[], outputName?: string): Promise<SessionOutput>;
  /** Free the native session. Safe to call twice; `run` fails afterwards. */
  close(): Promise<void>;
}
