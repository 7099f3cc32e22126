/**
 * The public API is a list someone chose: `edgetl` (src/index.ts) and `edgetl/web` (src/web/index.ts) export exactly
 * the names below, so an export added by accident (or one dropped) fails here and has to be decided on. And the
 * boundary is typed: every type a public function or class takes or returns is exported too, so a caller can name
 * what they pass and what they get.
 */
import t from 'tap';
import { join } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './helpers/shared.js';

// Values (functions, classes, constants) and types, each sorted.
const NODE_API = {
  values: [
    'Backbone',
    'BadImageError',
    'Classifier',
    'DEFAULT_BACKBONE_ID',
    'EDGETL_VERSION',
    'EdgetlError',
    'Head',
    'UNKNOWN_LABEL',
    'adaptHead',
    'adaptedBackboneOptions',
    'catalogEntries',
    'compareResults',
    'createSession',
    'defaultTuningSpace',
    'driftReport',
    'embedFolder',
    'evaluateHead',
    'exportMergedModel',
    'fineTuneHead',
    'isEdgetlError',
    'listProfiles',
    'loadProfile',
    'loadResults',
    'predictionJson',
    'prepareServedBackbone',
    'readEmbeddingSet',
    'runBench',
    'saveEmbedTuning',
    'savedEmbedTuning',
    'scanImageFolder',
    'selectBackbone',
    'startKioskServer',
    'trainHead',
    'tuneEmbedding',
    'writeEmbeddingSet',
  ],
  types: [
    'AdaptResult',
    'AdaptedBlock',
    'AdapterInfo',
    'BackboneLoadOptions',
    'BackboneSession',
    'BenchOptions',
    'BenchProgress',
    'BenchResults',
    'CandidateResult',
    'CatalogEntry',
    'ClassifiedImage',
    'ClassifiedImageByHeads',
    'ClassifierLoadOptions',
    'ClassifyManyOptions',
    'ComparisonReport',
    'CreateSessionOptions',
    'DatasetItem',
    'DecodeOptions',
    'DeviceProfile',
    'DriftReport',
    'EmbedFolderOptions',
    'EmbedFolderResult',
    'EmbedManyOptions',
    'EmbedManyResult',
    'EmbedSettings',
    'EmbedTrial',
    'EmbedTuning',
    'EmbedTuningSpace',
    'EmbeddedItem',
    'EmbeddedRows',
    'EmbeddingBackbone',
    'EmbeddingRows',
    'EmbeddingSet',
    'EmbeddingSetMetadata',
    'Evaluation',
    'ExecutionOptions',
    'ExecutionProviderName',
    'ExecutionProviderRequest',
    'ExportModelOptions',
    'ExportedModel',
    'FineTuneHeadOptions',
    'FineTuneReport',
    'HeadAdaptation',
    'HeadBackboneRef',
    'HeadFileContent',
    'HeadInit',
    'HeadOpenSet',
    'HeadType',
    'HeadWeights',
    'ImageFolder',
    'ImageSource',
    'KioskServer',
    'KioskServerOptions',
    'LoadedProfile',
    'MachineKey',
    'MlpOptions',
    'ModelFacts',
    'Normalization',
    'OpenSetEvaluation',
    'ParseOptions',
    'Prediction',
    'PredictionCore',
    'PreprocessSpec',
    'ProviderFallback',
    'ProviderReport',
    'RawImage',
    'RejectionReason',
    'ResolvedBackbone',
    'SelectOptions',
    'SelectProgress',
    'SelectResult',
    'SerializeOptions',
    'ServedBackbone',
    'SessionOutput',
    'SkippedImage',
    'SkippedItem',
    'TrainHeadOptions',
    'TrainingSummary',
    'TuneEmbeddingOptions',
  ],
};

const WEB_API = {
  values: [
    'EDGETL_VERSION',
    'EdgetlError',
    'Head',
    'PreprocessWorker',
    'UNKNOWN_LABEL',
    'WebBackbone',
    'WebInferenceSession',
    'assertHeadFitsBackbone',
    'driftFromScores',
    'driftReport',
    'fineTuneActivationsInWorker',
    'fineTuneInWorker',
    'imageToPixels',
    'imageToTensor',
    'isEdgetlError',
    'loadAdaptedBackbone',
    'loadBackboneFromClassifier',
    'openEdgetlStore',
    'parseWebHead',
    'trainHead',
    'trainHeadInWorker',
  ],
  types: [
    'AdaptedBlock',
    'AdapterInfo',
    'BackboneSession',
    'BrowserImageSource',
    'CanvasPreprocessOptions',
    'CanvasResizeQuality',
    'CpuTensor',
    'DriftReport',
    'EdgetlStore',
    'EmbedProgress',
    'EmbedTimings',
    'EmbeddingBackbone',
    'EmbeddingRows',
    'FineTuneActivations',
    'FineTuneReport',
    'FineTuneSettings',
    'HeadAdaptation',
    'HeadBackboneRef',
    'HeadFileContent',
    'HeadInit',
    'HeadOpenSet',
    'HeadType',
    'HeadWeights',
    'LoadWebBackboneOptions',
    'Normalization',
    'ParseOptions',
    'Prediction',
    'PreprocessSpec',
    'PreprocessingReport',
    'ProviderFallback',
    'ProviderReport',
    'RejectionReason',
    'ResizeGeometry',
    'SerializeOptions',
    'SessionOutput',
    'StoredExamples',
    'StoredHeadEntry',
    'TensorSlot',
    'TrainHeadOptions',
    'TrainingSummary',
    'WebBackboneInfo',
    'WebFineTuneOptions',
    'WebFineTuneRequest',
    'WebHead',
    'WebHeadType',
    'WebPrediction',
    'WebProviderReport',
    'WebProviderRequest',
    'WebSessionOptions',
    'WebTrainProgress',
    'WebTrainRequest',
    'WorkerTensor',
  ],
};

const files = { node: join(repoRoot, 'src', 'index.ts'), web: join(repoRoot, 'src', 'web', 'index.ts') };
const program = ts.createProgram(Object.values(files), {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  strict: true,
  skipLibCheck: true,
  resolveJsonModule: true,
  noEmit: true,
});
const checker = program.getTypeChecker();

/** What a module exports: its names, and each name's declared symbol (aliases followed). */
function exportsOf(file: string): Map<string, ts.Symbol> {
  const source = program.getSourceFile(file);
  const moduleSymbol = source && checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error(`${file} did not compile into a module`);
  const exports = new Map<string, ts.Symbol>();
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    exports.set(symbol.name, symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  }
  return exports;
}

const hidden = (node: ts.Node) =>
  (ts.canHaveModifiers(node) &&
    ts
      .getModifiers(node)
      ?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) ||
  ((ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessor(node)) &&
    ts.isPrivateIdentifier(node.name));

/**
 * The project's own types that a declaration's public surface names (parameters, results, properties, heritage),
 * skipping private members, function bodies and initializers: those are the implementation, not the contract.
 */
function typesNamedBy(declaration: ts.Declaration): ts.Symbol[] {
  const found: ts.Symbol[] = [];
  const visit = (node: ts.Node): void => {
    if (hidden(node)) return;
    if (ts.isTypeReferenceNode(node) || ts.isExpressionWithTypeArguments(node)) {
      const name = ts.isTypeReferenceNode(node) ? node.typeName : node.expression;
      let symbol = checker.getSymbolAtLocation(name);
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
      const own = symbol?.declarations?.some((d) => !d.getSourceFile().fileName.includes('/node_modules/'));
      if (symbol && own && !(symbol.flags & ts.SymbolFlags.TypeParameter)) found.push(symbol);
    }
    const skip = new Set<ts.Node | undefined>();
    if (ts.isFunctionLike(node) && 'body' in node) skip.add(node.body as ts.Node | undefined);
    if (ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node) || ts.isParameter(node))
      skip.add(node.initializer);
    ts.forEachChild(node, (child) => {
      if (!skip.has(child)) visit(child);
    });
  };
  visit(declaration);
  return found;
}

/**
 * "Export -> Type (file)" for every project type that an exported function, class or constant takes, returns or
 * shows as a member, and that the module does not export. One level deep: the members of an exported options or
 * result type may use internal types (reachable as `Options['field']`), or the list would hold the whole tree.
 */
function unexportedBoundaryTypes(exports: Map<string, ts.Symbol>): string[] {
  const exported = new Set(exports.values());
  const missing = new Set<string>();
  for (const [name, symbol] of exports) {
    if (!(symbol.flags & ts.SymbolFlags.Value)) continue;
    for (const declaration of symbol.declarations ?? []) {
      for (const type of typesNamedBy(declaration)) {
        if (exported.has(type)) continue;
        const where = type.declarations?.[0]?.getSourceFile().fileName.replace(`${repoRoot}/`, '');
        missing.add(`${name} -> ${type.name} (${where})`);
      }
    }
  }
  return [...missing].sort();
}

for (const [runtime, file, expected] of [
  ['node', files.node, NODE_API],
  ['web', files.web, WEB_API],
] as const) {
  const exports = exportsOf(file);
  t.test(`${runtime}: the public API exports exactly the chosen values and types`, async (t) => {
    const isValue = (symbol: ts.Symbol) => (symbol.flags & ts.SymbolFlags.Value) !== 0;
    const names = (values: boolean) =>
      [...exports]
        .filter(([, symbol]) => isValue(symbol) === values)
        .map(([name]) => name)
        .sort();
    t.same(names(true), expected.values, 'values');
    t.same(names(false), expected.types, 'types');
  });
  t.test(`${runtime}: every type a public function or class takes or returns is exported`, async (t) => {
    t.same(unexportedBoundaryTypes(exports), []);
  });
}

t.test('node: the values TypeScript sees are the values the module holds at run time', async (t) => {
  t.same(Object.keys(await import('../src/index.js')).sort(), NODE_API.values);
});
