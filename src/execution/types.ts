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
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** CUDA device id (default 0). */
  cudaDeviceId?: number;
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
}
