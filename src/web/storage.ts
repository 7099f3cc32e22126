/**
 * Keeping a kiosk's work across reloads and power cuts: heads (edgetl-head JSON text, exactly as exported) and
 * the example embeddings, in IndexedDB. A transaction commits whole or not at all, so a crash never leaves half a head.
 */
import { EdgetlError, describeError } from '../core/util/errors.js';

export interface StoredExamples {
  /** Examples are only reused with the backbone that embedded them. */
  backboneSha256: string;
  embeddingDim: number;
  classes: { name: string; embeddings: Float32Array[] }[];
}

export interface StoredHeadEntry {
  name: string;
  savedAt: number;
  bytes: number;
}

export interface EdgetlStore {
  saveHead(name: string, json: string): Promise<void>;
  loadHead(name: string): Promise<string | undefined>;
  listHeads(): Promise<StoredHeadEntry[]>;
  deleteHead(name: string): Promise<void>;
  saveExamples(examples: StoredExamples): Promise<void>;
  loadExamples(): Promise<StoredExamples | undefined>;
  close(): void;
}

const DB_NAME = 'edgetl';
const DB_VERSION = 1;
const HEADS = 'heads';
const EXAMPLES = 'examples';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
  });
}

/** Opens (creating on first use) the page's edgetl database. Fails with a clear error where storage is blocked. */
export async function openEdgetlStore(name = DB_NAME): Promise<EdgetlStore> {
  if (typeof indexedDB === 'undefined')
    throw new EdgetlError('no-storage', 'this browser has no IndexedDB: heads cannot be kept; export them instead');
  let db: IDBDatabase;
  try {
    const open = indexedDB.open(name, DB_VERSION);
    open.onupgradeneeded = () => {
      const upgrade = open.result;
      if (!upgrade.objectStoreNames.contains(HEADS)) upgrade.createObjectStore(HEADS);
      if (!upgrade.objectStoreNames.contains(EXAMPLES)) upgrade.createObjectStore(EXAMPLES);
    };
    db = await request(open);
  } catch (error) {
    throw new EdgetlError(
      'no-storage',
      `browser storage (IndexedDB) is not available: ${describeError(error)}. Private mode or a storage policy may block it; export heads to keep them.`,
    );
  }

  async function put(store: string, key: string, value: unknown): Promise<void> {
    const tx = db.transaction(store, 'readwrite');
    tx.objectStore(store).put(value, key);
    await done(tx);
  }
  async function get<T>(store: string, key: string): Promise<T | undefined> {
    const tx = db.transaction(store, 'readonly');
    return (await request(tx.objectStore(store).get(key))) as T | undefined;
  }

  return {
    async saveHead(headName, json) {
      await put(HEADS, headName, { json, savedAt: Date.now() });
    },
    async loadHead(headName) {
      return (await get<{ json: string }>(HEADS, headName))?.json;
    },
    async listHeads() {
      const tx = db.transaction(HEADS, 'readonly');
      const store = tx.objectStore(HEADS);
      const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
      return keys.map((key, i) => {
        const value = values[i] as { json: string; savedAt: number };
        return { name: String(key), savedAt: value.savedAt, bytes: value.json.length };
      });
    },
    async deleteHead(headName) {
      const tx = db.transaction(HEADS, 'readwrite');
      tx.objectStore(HEADS).delete(headName);
      await done(tx);
    },
    async saveExamples(examples) {
      await put(EXAMPLES, 'current', examples);
    },
    async loadExamples() {
      return get<StoredExamples>(EXAMPLES, 'current');
    },
    close() {
      db.close();
    },
  };
}

/** Offers `text` as a file download (the browser's save dialog or downloads folder). */
export function downloadText(text: string, fileName: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.style.display = 'none';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
