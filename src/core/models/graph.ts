import type { IGraphProto, INodeProto } from './onnx-model.js';

/** Who produces and who consumes each tensor of a graph (main graph only; subgraph reads count as consumers). */
export class GraphIndex {
  readonly producers = new Map<string, INodeProto>();
  readonly consumers = new Map<string, INodeProto[]>();
  readonly initializers = new Set<string>();
  readonly graphInputs = new Set<string>();
  readonly graphOutputs: string[];

  constructor(readonly graph: IGraphProto) {
    for (const init of graph.initializer ?? []) if (init.name) this.initializers.add(init.name);
    for (const input of graph.input ?? [])
      if (input.name && !this.initializers.has(input.name)) this.graphInputs.add(input.name);
    this.graphOutputs = (graph.output ?? []).map((o) => o.name ?? '').filter(Boolean);
    for (const node of graph.node ?? []) {
      for (const output of node.output ?? []) if (output) this.producers.set(output, node);
      for (const input of nodeReads(node)) {
        const list = this.consumers.get(input);
        if (list) list.push(node);
        else this.consumers.set(input, [node]);
      }
    }
  }

  producer(tensor: string): INodeProto | undefined {
    return this.producers.get(tensor);
  }

  consumersOf(tensor: string): INodeProto[] {
    return this.consumers.get(tensor) ?? [];
  }

  /** Does the tensor exist anywhere in the graph (input, initializer, node output)? */
  has(tensor: string): boolean {
    return this.initializers.has(tensor) || this.graphInputs.has(tensor) || this.producers.has(tensor);
  }

  /**
   * A value fixed at export time: an initializer, a Constant, or a pure function of those (DequantizeLinear of an
   * int8 weight, a Transpose or Reshape of a constant...). Classifier weights look like this.
   */
  isConstant(tensor: string, depth = 0): boolean {
    if (this.initializers.has(tensor)) return true;
    if (this.graphInputs.has(tensor) || depth > 8) return false;
    const node = this.producers.get(tensor);
    if (!node) return false;
    if (node.opType === 'Constant') return true;
    const inputs = (node.input ?? []).filter(Boolean);
    return inputs.length > 0 && inputs.every((i) => this.isConstant(i, depth + 1));
  }
}

/** Names a node reads: its inputs plus outer-scope names its subgraphs (If/Loop/Scan bodies) refer to. */
export function nodeReads(node: INodeProto): string[] {
  const reads = (node.input ?? []).filter(Boolean);
  for (const attr of node.attribute ?? []) {
    const graphs = [...(attr.g ? [attr.g] : []), ...(attr.graphs ?? [])];
    for (const g of graphs) reads.push(...outerReads(g));
  }
  return reads;
}

/** Names a subgraph uses without defining them (captured from the enclosing graph). */
function outerReads(graph: IGraphProto): string[] {
  const defined = new Set<string>();
  for (const i of graph.input ?? []) if (i.name) defined.add(i.name);
  for (const i of graph.initializer ?? []) if (i.name) defined.add(i.name);
  const reads: string[] = [];
  for (const node of graph.node ?? []) {
    for (const r of nodeReads(node)) if (!defined.has(r)) reads.push(r);
    for (const o of node.output ?? []) if (o) defined.add(o);
  }
  for (const o of graph.output ?? []) if (o.name && !defined.has(o.name)) reads.push(o.name);
  return reads;
}

/** A node as a message names it: its op type and name, or the tensor it makes. */
export function nodeLabel(node: INodeProto): string {
  return node.name ? `${node.opType} "${node.name}"` : `${node.opType} -> ${(node.output ?? [])[0] ?? '?'}`;
}
