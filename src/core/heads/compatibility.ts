import { EdgetlError } from '../util/errors.js';

/** What identifies a backbone to a head: its source file's sha256 and the size of its embeddings. */
export interface BackboneIdentity {
  id: string;
  sha256: string;
  embeddingDim: number;
}

export interface FitOptions {
  /** What the head is called in the message ("head", a file name); default "the head". */
  what?: string;
  /** The file the head came from, recorded on the error. */
  file?: string;
  /** How the message introduces the given backbone; default "the backbone given is" (the kiosk: "this page runs"). */
  givenAs?: string;
  /** What the user can do, when the caller knows better than "use backbone X or retrain the head". */
  remedy?: string;
}

/**
 * The one head/backbone compatibility check (Node Classifier, browser heads): refuses a head trained on another
 * backbone (sha256, then embedding size), naming both.
 */
export function assertHeadFitsBackbone(
  trainedOn: BackboneIdentity,
  given: BackboneIdentity,
  options: FitOptions = {},
): void {
  const what = options.what ?? 'the head';
  const file = options.file === undefined ? undefined : { file: options.file };
  if (trainedOn.sha256.toLowerCase() !== given.sha256.toLowerCase()) {
    const remedy = options.remedy ?? `use backbone ${trainedOn.id} or retrain the head`;
    throw new EdgetlError(
      'head-backbone-mismatch',
      `${what} was trained on backbone ${trainedOn.id} (sha256 ${trainedOn.sha256.slice(0, 12)}…), but ${options.givenAs ?? 'the backbone given is'} ${given.id} ` +
        `(sha256 ${given.sha256.slice(0, 12)}…): ${remedy}`,
      file,
    );
  }
  if (trainedOn.embeddingDim !== given.embeddingDim) {
    throw new EdgetlError(
      'head-backbone-mismatch',
      `${what} expects ${trainedOn.embeddingDim}-d embeddings, but backbone ${given.id} gives ${given.embeddingDim}`,
      file,
    );
  }
}
