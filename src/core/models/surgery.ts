import { EdgetlError } from '../util/errors.js';
import type { EmbeddingLocation } from './embedding.js';
import { GraphIndex, nodeReads } from './graph.js';
import { isUnknownDim } from './shapes.js';
import {
  ElementType,
  assertLosslessEncode,
  encodeOnnxModel,
  onnx,
  opsetVersion,
  type IGraphProto,
  type IModelProto,
  type INodeProto,
  type IValueInfoProto,
} from './onnx-model.js';

/**
 * Bump when the extractor a given source and embedding produce changes (new nodes, different pruning, different
 * discovery): feature-extractor cache entries are keyed by it.
 */
export const SURGERY_VERSION = 1;

export const EMBEDDING_OUTPUT = 'embedding';

export interface FeatureExtractor {
  /** ONNX bytes of the extractor. */
  bytes: Uint8Array;
  outputName: typeof EMBEDDING_OUTPUT;
  dim: number;
  /** What was done, for reports and fingerprints. */
  description: string;
}

/**
 * Turn a classifier into a feature extractor: one output `embedding`, float32 [N, dim], made from `embedding.tensor`
 * by a DequantizeLinear (quantized tensors) and a Flatten(axis=1); every node the embedding does not depend on
 * (the classifier, other outputs) is pruned, with the initializers and value_info only they used.
 * Runtime-neutral: works on the decoded model, never modifies it, returns new bytes.
 */
export function buildFeatureExtractor(model: IModelProto, embedding: EmbeddingLocation): FeatureExtractor {
  const { model: extractor, description } = featureExtractorModel(model, embedding);
  return { bytes: encodeOnnxModel(extractor), outputName: EMBEDDING_OUTPUT, dim: embedding.dim, description };
}

/** The nodes that make `embedding` from the cut tensor: DequantizeLinear when quantized, then Flatten(axis=1). */
function embeddingNodes(
  model: IModelProto,
  embedding: EmbeddingLocation,
  names: UniqueNames,
  renames: Map<string, string>,
): INodeProto[] {
  const source = renames.get(embedding.tensor) ?? embedding.tensor;
  const added: INodeProto[] = [];
  let floatTensor = source;
  if (embedding.needsDequantize) {
    if (!embedding.quantization)
      throw new EdgetlError(
        'embedding-quantized',
        `embedding tensor "${embedding.tensor}" is quantized but has no scale`,
      );
    if (opsetVersion(model, '') < 10) throw new EdgetlError('onnx-opset', 'DequantizeLinear needs opset >= 10');
    floatTensor = names.fresh(`${embedding.tensor}_dequantized`);
    const inputs = [embedding.quantization.scale, embedding.quantization.zeroPoint ?? ''].map(
      (n) => renames.get(n) ?? n,
    );
    added.push(
      onnx.NodeProto.create({
        name: names.fresh('edgetl_embedding_dequantize'),
        opType: 'DequantizeLinear',
        input: [source, ...(inputs[1] ? inputs : [inputs[0]])],
        output: [floatTensor],
      }),
    );
  }
  added.push(
    onnx.NodeProto.create({
      name: names.fresh('edgetl_embedding_flatten'),
      opType: 'Flatten',
      input: [floatTensor],
      output: [EMBEDDING_OUTPUT],
      attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
    }),
  );
  return added;
}

/** What the embedding needs: walk producers backwards from it. The tensors read, and the nodes kept. */
function neededBy(output: string, nodes: INodeProto[]): { needed: Set<string>; keptNodes: Set<INodeProto> } {
  const producers = new Map<string, INodeProto>();
  for (const node of nodes) for (const o of node.output ?? []) if (o) producers.set(o, node);
  const needed = new Set<string>();
  const keptNodes = new Set<INodeProto>();
  const stack = [output];
  while (stack.length > 0) {
    const tensor = stack.pop()!;
    if (needed.has(tensor)) continue;
    needed.add(tensor);
    const node = producers.get(tensor);
    if (node && !keptNodes.has(node)) {
      keptNodes.add(node);
      for (const read of nodeReads(node)) stack.push(read);
    }
  }
  return { needed, keptNodes };
}

function renamedName(renames: Map<string, string>, name: string | null | undefined): string {
  return renames.get(name ?? '') ?? name ?? '';
}

/** The initializers, inputs and value_info the kept nodes use, under their new names. */
function keptGraphParts(graph: IGraphProto, needed: Set<string>, renames: Map<string, string>) {
  const renamed = (name: string | null | undefined) => renamedName(renames, name);
  const initializer = (graph.initializer ?? [])
    .filter((t) => needed.has(renamed(t.name)))
    .map((t) => (renames.has(t.name ?? '') ? onnx.TensorProto.create({ ...t, name: renamed(t.name) }) : t));
  const sparseInitializer = (graph.sparseInitializer ?? []).filter((t) => needed.has(renamed(t.values?.name)));
  const keepInfo = (list: IValueInfoProto[] | null | undefined) =>
    (list ?? [])
      .filter((v) => needed.has(renamed(v.name)) && renamed(v.name) !== EMBEDDING_OUTPUT)
      .map((v) => (renames.has(v.name ?? '') ? onnx.ValueInfoProto.create({ ...v, name: renamed(v.name) }) : v));
  return { initializer, sparseInitializer, input: keepInfo(graph.input), valueInfo: keepInfo(graph.valueInfo) };
}

/** The `embedding` output: float32 [batch, dim]. */
function embeddingOutputInfo(embedding: EmbeddingLocation): IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name: EMBEDDING_OUTPUT,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: ElementType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: [
            batchDimension(embedding.batchDim),
            onnx.TensorShapeProto.Dimension.create({ dimValue: embedding.dim }),
          ],
        }),
      }),
    }),
  });
}

/** The source model's header around the new graph, with the surgery recorded in metadata (older records dropped). */
function extractorModel(model: IModelProto, graph: IGraphProto, description: string): IModelProto {
  const metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => !p.key?.startsWith('edgetl.')),
    onnx.StringStringEntryProto.create({ key: 'edgetl.surgery', value: description }),
  ];
  return onnx.ModelProto.create({
    irVersion: model.irVersion ?? undefined,
    opsetImport: model.opsetImport ?? [],
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    domain: model.domain ?? '',
    modelVersion: model.modelVersion ?? undefined,
    docString: model.docString ?? '',
    graph,
    metadataProps,
    functions: model.functions ?? [],
  });
}

/** The surgery of buildFeatureExtractor as a model message, for callers that add to the graph (merged export). */
export function featureExtractorModel(
  model: IModelProto,
  embedding: EmbeddingLocation,
): { model: IModelProto; description: string } {
  const graph = model.graph;
  if (!graph) throw new EdgetlError('onnx-parse', 'model has no graph');
  // The extractor is a new message: check here that the source lost nothing when it was parsed.
  assertLosslessEncode(model);
  const index = new GraphIndex(graph);
  if (!index.has(embedding.tensor)) {
    throw new EdgetlError('embedding-not-found', `embedding tensor "${embedding.tensor}" is not in the graph`);
  }
  const names = new UniqueNames(graph);
  const renames = new Map<string, string>();
  // A tensor already called `embedding` (even the one we cut at) is renamed so the new output can take the name.
  if (index.has(EMBEDDING_OUTPUT)) renames.set(EMBEDDING_OUTPUT, names.fresh('embedding_original'));
  const added = embeddingNodes(model, embedding, names, renames);
  const allNodes = [...(graph.node ?? []).map((node) => renameNode(node, renames)), ...added];
  const { needed, keptNodes } = neededBy(EMBEDDING_OUTPUT, allNodes);
  const { initializer, sparseInitializer, input, valueInfo } = keptGraphParts(graph, needed, renames);
  if (![...index.graphInputs].some((name) => needed.has(renamedName(renames, name)))) {
    throw new EdgetlError(
      'embedding-not-found',
      `embedding tensor "${embedding.tensor}" does not depend on any model input`,
    );
  }
  const newGraph: IGraphProto = onnx.GraphProto.create({
    name: graph.name ? `${graph.name}_features` : 'features',
    node: allNodes.filter((n) => keptNodes.has(n)),
    initializer,
    sparseInitializer,
    input,
    output: [embeddingOutputInfo(embedding)],
    valueInfo,
    docString: graph.docString ?? '',
  });
  const description = describeSurgery(embedding);
  return { model: extractorModel(model, newGraph, description), description };
}

/** A stable, human-readable account of the surgery (part of the extractor fingerprint). */
export function describeSurgery(
  embedding: Pick<EmbeddingLocation, 'tensor' | 'dim' | 'needsDequantize' | 'quantization' | 'source'>,
): string {
  const steps = [
    `v${SURGERY_VERSION}`,
    `cut at "${embedding.tensor}" (${embedding.source})`,
    embedding.needsDequantize
      ? `DequantizeLinear(scale "${embedding.quantization?.scale}", zero point "${embedding.quantization?.zeroPoint ?? ''}")`
      : '',
    `Flatten(axis=1) -> ${EMBEDDING_OUTPUT} [N, ${embedding.dim}]`,
    'prune unused nodes and initializers',
  ];
  return steps.filter(Boolean).join('; ');
}

function batchDimension(batch: EmbeddingLocation['batchDim']) {
  if (typeof batch === 'number') return onnx.TensorShapeProto.Dimension.create({ dimValue: batch });
  // Symbols the shape inference invented for unnamed dims are not worth exporting.
  return onnx.TensorShapeProto.Dimension.create({ dimParam: isUnknownDim(batch) ? 'N' : batch });
}

function renameNode(node: INodeProto, renames: Map<string, string>): INodeProto {
  if (renames.size === 0) return node;
  const touches = [...(node.input ?? []), ...(node.output ?? [])].some((n) => renames.has(n));
  if (!touches) return node;
  return onnx.NodeProto.create({
    ...node,
    input: (node.input ?? []).map((n) => renames.get(n) ?? n),
    output: (node.output ?? []).map((n) => renames.get(n) ?? n),
  });
}

/** Tensor and node names not yet used in a graph, for nodes added to it. */
export class UniqueNames {
  private readonly taken = new Set<string>();
  constructor(graph: IGraphProto) {
    for (const n of graph.node ?? []) {
      if (n.name) this.taken.add(n.name);
      for (const o of n.output ?? []) this.taken.add(o);
      for (const i of n.input ?? []) this.taken.add(i);
    }
    for (const i of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])])
      if (i.name) this.taken.add(i.name);
    for (const i of graph.initializer ?? []) if (i.name) this.taken.add(i.name);
  }
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }
}
