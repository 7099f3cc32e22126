/**
 * A backbone and one or more heads joined: images in, labels out. Each image is embedded once, whatever the number
 * of heads ("multi-task": one feature pass, several heads on it).
 *
 *   const classifier = await Classifier.load({ backbone: 'mobilenetv2-12-int8', head: 'head.json' });
 *   const { label, score, topK } = await classifier.classify('photo.jpg', { topK: 3 });
 *   const tasks = await Classifier.load({ backbone: 'mobilenetv2-12-int8', heads: ['species.json', 'damage.json'] });
 *   const [species, damage] = await tasks.classifyAll('photo.jpg');
 *   await classifier.close();
 */
import { Backbone, type BackboneLoadOptions } from './embed/backbone.js';
import type { ImageSource } from './preprocess/node-image.js';
import type { Head, Prediction } from '../core/heads/head.js';
import { loadHead } from './head-io.js';
import { EdgetlError } from '../core/util/errors.js';
import { adaptedSurgery } from '../core/models/last-block-graph.js';
import { assertHeadFitsBackbone } from '../core/heads/compatibility.js';

export interface ClassifierLoadOptions extends BackboneLoadOptions {
  /** Catalog id, path, or an open Backbone (not closed by `classifier.close()` then). */
  backbone: string | Backbone;
  /** Head file path (or URL), or a Head. Give `heads` instead for several. */
  head?: string | Head;
  /** Several heads on the one backbone pass, in the order their predictions are wanted. */
  heads?: readonly (string | Head)[];
}

export interface ClassifiedImage extends Prediction {
  /** Index of the image in the input list. */
  input: number;
}

/** One image's predictions, one per head, in the classifier's head order. */
export interface ClassifiedImageByHeads {
  /** Index of the image in the input list. */
  input: number;
  predictions: Prediction[];
}

export interface ClassifyManyOptions {
  topK?: number;
  strict?: boolean;
  useCache?: boolean;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The embedding rows of the images that were classified, in order (for drift and open-set summaries). */
export interface EmbeddedRows {
  data: Float32Array;
  rows: number;
}

export interface SkippedImage {
  input: number;
  path: string;
  reason: string;
}

export class Classifier {
  private constructor(
    readonly backbone: Backbone,
    /** Every head, in the order given; `head` is the first. */
    readonly heads: readonly Head[],
    private readonly ownsBackbone: boolean,
  ) {}

  /** The first (or only) head. */
  get head(): Head {
    return this.heads[0];
  }

  /**
   * Refuses heads that cannot share one embedding pass: trained on different backbones (sha256, embedding size) or
   * with different preprocessing. `names` label the heads in the message (file names in the CLI).
   */
  static checkShareable(heads: readonly Head[], names: readonly string[] = heads.map((_, i) => `head ${i + 1}`)): void {
    const first = heads[0];
    if (!first) throw new EdgetlError('usage', 'a classifier needs at least one head');
    heads.forEach((head, i) => {
      if (i === 0) return;
      const why =
        head.backbone.sha256 !== first.backbone.sha256
          ? `backbone ${first.backbone.id} (sha256 ${first.backbone.sha256.slice(0, 12)}...) vs ${head.backbone.id} (sha256 ${head.backbone.sha256.slice(0, 12)}...)`
          : head.embeddingDim !== first.embeddingDim
            ? `${first.embeddingDim}-d vs ${head.embeddingDim}-d embeddings`
            : first.backbone.preprocess &&
                head.backbone.preprocess &&
                sortedJson(first.backbone.preprocess) !== sortedJson(head.backbone.preprocess)
              ? 'the same backbone but different preprocessing'
              : undefined;
      if (why) {
        throw new EdgetlError(
          'head-backbone-mismatch',
          `${names[0]} and ${names[i]} need different backbone passes (${why}): heads in one run share one embedding of each image; run them separately or retrain one on the other's backbone`,
        );
      }
    });
  }

  /** Refuses a head trained on another backbone (sha256 or embedding size), naming both. */
  static check(backbone: Backbone, head: Head): void {
    assertHeadFitsBackbone(head.backbone, backbone, { what: 'head' });
    const wanted = head.adaptedBlock ? adaptedSurgery(head.adaptedBlock).description : undefined;
    if (wanted !== backbone.surgery) {
      throw new EdgetlError(
        'head-backbone-mismatch',
        wanted
          ? `the head carries a fine-tuned last block, but backbone ${backbone.id} was opened ${backbone.surgery ? 'with another one' : 'without it'}: load the backbone by id or path and Classifier opens it with the head's block`
          : `backbone ${backbone.id} runs a modified graph (${backbone.surgery}), but the head expects the plain feature extractor`,
      );
    }
  }

  static async load(options: ClassifierLoadOptions): Promise<Classifier> {
    const given = [...(options.head !== undefined ? [options.head] : []), ...(options.heads ?? [])];
    if (given.length === 0) throw new EdgetlError('usage', 'Classifier.load needs a head (or heads)');
    const heads = await Promise.all(given.map((h) => (typeof h === 'string' ? loadHead(h) : h)));
    Classifier.checkShareable(
      heads,
      given.map((h, i) => (typeof h === 'string' ? h : `head ${i + 1}`)),
    );
    if (heads.length > 1 && heads.some((head) => head.adaptedBlock)) {
      throw new EdgetlError(
        'head-backbone-mismatch',
        'a head with a fine-tuned last block needs its own backbone pass: classify with it alone',
      );
    }
    const adaptedBlock = heads[0]!.adaptedBlock;
    const ownsBackbone = typeof options.backbone === 'string';
    const backbone =
      typeof options.backbone === 'string'
        ? await Backbone.load(options.backbone, {
            ...options,
            ...(adaptedBlock ? { surgery: adaptedSurgery(adaptedBlock) } : {}),
          })
        : options.backbone;
    try {
      for (const head of heads) Classifier.check(backbone, head);
    } catch (error) {
      if (ownsBackbone) await backbone.close();
      throw error;
    }
    return new Classifier(backbone, heads, ownsBackbone);
  }

  get labels(): string[] {
    return this.head.labels;
  }

  /** The first head's prediction. */
  async classify(image: ImageSource, options: { topK?: number } = {}): Promise<Prediction> {
    return this.head.predict(await this.backbone.embed(image), options);
  }

  /** Every head's prediction of one image (embedded once), in head order. */
  async classifyAll(image: ImageSource, options: { topK?: number } = {}): Promise<Prediction[]> {
    const embedding = await this.backbone.embed(image);
    return this.heads.map((head) => head.predict(embedding, options));
  }

  /**
   * Classify many images (batched embedding). Unusable images are skipped and listed with their reason, unless
   * `strict`, which stops at the first one.
   */
  async classifyMany(
    images: readonly ImageSource[],
    options: ClassifyManyOptions = {},
  ): Promise<{ predictions: ClassifiedImage[]; skipped: SkippedImage[]; embeddings: EmbeddedRows }> {
    const { images: classified, skipped, embeddings } = await this.classifyManyByHeads(images, options);
    return { predictions: classified.map((c) => ({ ...c.predictions[0], input: c.input })), skipped, embeddings };
  }

  /** classifyMany with every head: each image is embedded once and each head predicts from that embedding. */
  async classifyManyByHeads(
    images: readonly ImageSource[],
    options: ClassifyManyOptions = {},
  ): Promise<{ images: ClassifiedImageByHeads[]; skipped: SkippedImage[]; embeddings: EmbeddedRows }> {
    const result = await this.backbone.embedMany(images, {
      strict: options.strict,
      useCache: options.useCache,
      batchSize: options.batchSize,
      onProgress: options.onProgress ? (done, total) => options.onProgress!(done, total ?? images.length) : undefined,
    });
    const perHead = this.heads.map((head) =>
      head.predictMany(result.embeddings, result.items.length, { topK: options.topK }),
    );
    return {
      images: result.items.map((item, i) => ({
        input: item.index,
        predictions: perHead.map((predictions) => predictions[i]),
      })),
      skipped: result.skipped.map((s) => ({ input: s.index, path: s.path, reason: s.reason })),
      embeddings: { data: result.embeddings, rows: result.items.length },
    };
  }

  async close(): Promise<void> {
    if (this.ownsBackbone) await this.backbone.close();
  }
}

/** JSON with keys in sorted order: equal preprocessing specs compare equal whatever order their fields came in. */
function sortedJson(value: object): string {
  return JSON.stringify(value, Object.keys(value).sort());
}
