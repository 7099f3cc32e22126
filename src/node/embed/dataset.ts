import { readdir, stat } from 'node:fs/promises';
import { join, extname } from 'node:path';
import { EdgetlError } from '../../core/util/errors.js';

/** Extensions sharp decodes that edgetl treats as images (compared lower-case). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];

export interface DatasetItem {
  path: string;
  /** Class folder name, or null in a flat folder. */
  label: string | null;
}

export interface ImageFolder {
  /** Class names in sorted order (only folders holding at least one image), or null for a flat folder. */
  classes: string[] | null;
  /** Every image, sorted by class then file name; paths are `join(dir, ...)` of the `dir` given. */
  items: DatasetItem[];
  /** Things a user should know that did not stop the scan (empty class folders, ignored entries). */
  warnings: string[];
  /** Entries that could not be used at all: broken or looping symbolic links (with the reason). */
  skipped: { path: string; reason: string }[];
}

export function isImageFileName(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

/** Dot files, and the folder macOS zips add, are never data. */
function isHidden(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX';
}

/** Code-unit order, not locale order: the same on every machine. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Listing {
  folders: string[];
  images: string[];
  others: string[];
  /** Symbolic links whose target cannot be reached, with the reason. */
  broken: { name: string; reason: string }[];
}

/** One folder's visible entries; symlinks are followed (a dataset assembled with links is common). */
async function list(dir: string): Promise<Listing> {
  const entries = await readdir(dir, { withFileTypes: true });
  const listing: Listing = { folders: [], images: [], others: [], broken: [] };
  for (const entry of entries) {
    if (isHidden(entry.name)) continue;
    let isDirectory = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const target = await stat(join(dir, entry.name)).catch((error: NodeJS.ErrnoException) => error);
      if (target instanceof Error) {
        const reason =
          target.code === 'ELOOP'
            ? 'symbolic link loop'
            : target.code === 'ENOENT'
              ? 'broken symbolic link (its target does not exist)'
              : `unreadable symbolic link (${target.code ?? target.message})`;
        listing.broken.push({ name: entry.name, reason });
        continue;
      }
      isDirectory = target.isDirectory();
      isFile = target.isFile();
    }
    if (isDirectory) listing.folders.push(entry.name);
    else if (isFile && isImageFileName(entry.name)) listing.images.push(entry.name);
    else listing.others.push(entry.name);
  }
  listing.folders.sort(byName);
  listing.images.sort(byName);
  listing.others.sort(byName);
  return listing;
}

function withSkipped(warnings: string[], skipped: { path: string; reason: string }[]): string[] {
  if (skipped.length === 0) return warnings;
  return [
    ...warnings,
    `skipped ${skipped.length} unusable entr${skipped.length > 1 ? 'ies' : 'y'}: ${preview(skipped.map((s) => `${s.path} (${s.reason})`))}`,
  ];
}

function preview(names: string[], limit = 5): string {
  const shown = names.slice(0, limit).join(', ');
  return names.length > limit ? `${shown}, ... (${names.length} in all)` : shown;
}

/**
 * Scan `dir` as either class folders (`<dir>/<class>/<image>`) or a flat folder of images (no labels).
 *
 * Only direct children count: images nested deeper inside a class folder are ignored with a warning, so a label
 * is always the one folder name above the file. A folder holding both class folders with images and loose images
 * is refused: guessing would either drop images or invent a class, and either makes the numbers lie.
 */
export async function scanImageFolder(dir: string): Promise<ImageFolder> {
  const info = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT')
      throw new EdgetlError('not-found', `image folder ${dir} does not exist`, { file: dir });
    throw new EdgetlError('unreadable', `cannot read image folder ${dir}: ${error.message}`, {
      file: dir,
      cause: error,
    });
  });
  if (!info.isDirectory()) {
    throw new EdgetlError(
      'not-a-directory',
      `${dir} is not a folder: pass a folder of images, or of class folders holding images`,
      { file: dir },
    );
  }
  const top = await list(dir);
  const warnings: string[] = [];
  const skipped = top.broken.map((b) => ({ path: join(dir, b.name), reason: b.reason }));

  const classFolders: { name: string; images: string[] }[] = [];
  const emptyFolders: string[] = [];
  for (const name of top.folders) {
    const inner = await list(join(dir, name));
    skipped.push(...inner.broken.map((b) => ({ path: join(dir, name, b.name), reason: b.reason })));
    if (inner.images.length === 0) {
      emptyFolders.push(name);
      continue;
    }
    classFolders.push({ name, images: inner.images });
    if (inner.folders.length > 0) {
      warnings.push(
        `ignored ${inner.folders.length} nested folder(s) in class "${name}" (only images directly inside a class folder count): ${preview(inner.folders)}`,
      );
    }
  }

  if (classFolders.length > 0 && top.images.length > 0) {
    throw new EdgetlError(
      'mixed-layout',
      `${dir} holds both class folders (${preview(classFolders.map((c) => c.name))}) and ${top.images.length} loose image(s) (${preview(top.images)}). ` +
        'Move the loose images into a class folder, or pass a folder with only one kind.',
      { file: dir },
    );
  }

  if (classFolders.length > 0) {
    if (emptyFolders.length > 0)
      warnings.push(`ignored ${emptyFolders.length} class folder(s) with no images: ${preview(emptyFolders, 20)}`);
    if (top.others.length > 0)
      warnings.push(`ignored ${top.others.length} non-image file(s) in ${dir}: ${preview(top.others)}`);
    const items: DatasetItem[] = [];
    for (const folder of classFolders) {
      for (const image of folder.images) items.push({ path: join(dir, folder.name, image), label: folder.name });
    }
    return { classes: classFolders.map((c) => c.name), items, warnings: withSkipped(warnings, skipped), skipped };
  }

  if (top.images.length > 0) {
    if (emptyFolders.length > 0)
      warnings.push(`ignored ${emptyFolders.length} sub-folder(s) with no images: ${preview(emptyFolders, 20)}`);
    if (top.others.length > 0) warnings.push(`ignored ${top.others.length} non-image file(s): ${preview(top.others)}`);
    return {
      classes: null,
      items: top.images.map((image) => ({ path: join(dir, image), label: null })),
      warnings: withSkipped(warnings, skipped),
      skipped,
    };
  }

  const found =
    skipped.length > 0
      ? `${skipped.length} entr${skipped.length > 1 ? 'ies are' : 'y is'} unusable: ${preview(skipped.map((s) => `${s.path} (${s.reason})`))}`
      : top.folders.length > 0
        ? `its ${top.folders.length} sub-folder(s) (${preview(top.folders)}) hold no images`
        : top.others.length > 0
          ? `it holds only non-image files (${preview(top.others)})`
          : 'it is empty';
  throw new EdgetlError(
    'empty-dataset',
    `no images in ${dir}: ${found}. Images are ${IMAGE_EXTENSIONS.join(' ')} files.`,
    { file: dir },
  );
}
