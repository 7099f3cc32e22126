import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseCommandLine, parseNumberOption, printJson, type Command } from './common.js';
import { DEFAULT_BACKBONE_ID } from '../models/catalog.js';
import { Head } from '../heads/head.js';
import { prepareServedBackbone, startKioskServer } from '../web/server.js';
import { EdgetlError, describeError } from '../util/errors.js';

const help = `edgetl serve: the kiosk app in a browser, fully offline

Usage: edgetl serve [--port 8080] [--host 127.0.0.1] [--backbone <id|path>] [--head head.json] [--json]

Serves the kiosk page, the backbone as a feature extractor, and onnxruntime-web's own files from this machine
(no CDN, no internet), with the Cross-Origin-Opener/Embedder-Policy headers that let WebAssembly use threads.
Open the printed URL in Chrome or Edge: add example photos per class (files, drag and drop, or the camera),
train a head in the page, watch live predictions, export the head as edgetl-head v1 JSON (the same file
\`edgetl predict\` and the Node API load). The page keeps the last head and the examples in the browser
(IndexedDB), so a reload or a power cut loses nothing.

Options:
  --port <n>          port to listen on (default 8080; 0 picks a free one)
  --host <addr>       address to bind (default 127.0.0.1). The camera only works on a secure origin, which
                      http://localhost and http://127.0.0.1 are; other hosts need https in front (a reverse proxy).
  --backbone <id|path> catalog id or .onnx file (default ${DEFAULT_BACKBONE_ID}); the classifier is cut off here
                      and the page receives the feature extractor
  --embedding <tensor> embedding tensor name, when automatic discovery picks the wrong one
  --head <file>       an edgetl-head v1 file the page starts with (it must match the backbone)
  --json              print one JSON line {"url","port","backbone":{...}} when ready (for scripts)

Add ?ep=wasm or ?ep=webgpu to the URL to force a provider; the default tries WebGPU on a hardware adapter, then
WebAssembly, and the page's device panel says which ran and why. Stop with Ctrl-C.
`;

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve the kiosk app (train and predict in a browser) on localhost, offline',
  help,
  async run(argv) {
    const { values } = parseCommandLine(
      argv,
      {
        port: { type: 'string' },
        host: { type: 'string' },
        backbone: { type: 'string' },
        embedding: { type: 'string' },
        head: { type: 'string' },
        json: { type: 'boolean' },
        debug: { type: 'boolean' },
      },
      false,
    );
    const port = parseNumberOption(values.port, 'port', 8080, { integer: true, min: 0, max: 65535 });
    const host = values.host ?? '127.0.0.1';
    const backbone = await prepareServedBackbone(values.backbone ?? DEFAULT_BACKBONE_ID, { embeddingTensor: values.embedding });

    let headJson: string | undefined;
    if (values.head) {
      const file = resolve(values.head);
      try {
        headJson = await readFile(file, 'utf8');
      } catch (error) {
        throw new EdgetlError('head-read', `cannot read head file ${file}: ${describeError(error)}`, { file });
      }
      // Refuse here, at the terminal, rather than on the kiosk screen.
      Head.parse(headJson, { file, backbone: { id: backbone.id, sha256: backbone.sha256, embeddingDim: backbone.embeddingDim } });
    }

    const server = await startKioskServer({
      backbone,
      host,
      port,
      headJson,
      onLog: values.debug ? (line) => process.stderr.write(`${line}\n`) : undefined,
    });
    if (values.json) {
      printJson({ url: server.url, port: server.port, host: server.host, backbone: { id: backbone.id, sha256: backbone.sha256, embeddingDim: backbone.embeddingDim, path: backbone.path }, head: values.head ?? null });
    } else {
      process.stdout.write(
        [
          `edgetl kiosk: ${server.url}`,
          `  backbone ${backbone.id} (${backbone.embeddingDim}-d embedding, ${(backbone.model.byteLength / 1e6).toFixed(1)} MB feature extractor) from ${backbone.path}`,
          ...(values.head ? [`  head ${values.head}`] : []),
          ...(host !== '127.0.0.1' && host !== 'localhost' && host !== '::1' ? [`  note: on ${host} the camera needs https in front of this server (browsers allow it only on secure origins)`] : []),
          '  Ctrl-C stops the server.',
          '',
        ].join('\n'),
      );
    }
    await new Promise<void>((resolveStop) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void server.close().then(resolveStop);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};
